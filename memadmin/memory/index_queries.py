"""The index layer's queries (index.py is its other half: creating, adopting, health): search, KNN,
membership lookups, counts, grouped counts, distinct values and cursor batches, each an FT.SEARCH,
FT.AGGREGATE or FT.CURSOR built here, on the store the app's ``Place`` names. A query whose index went away
behind our back recreates it once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from django.conf import settings
from valkey import exceptions as vexc

from memadmin.memory import store
from memadmin.memory.ids import escape_tag
from memadmin.memory.index import RETURN_FIELDS, decode, ensure, forget, memory_id_of, missing_index
from memadmin.memory.store import Place

# --- queries --------------------------------------------------------------------------


def ft(place: Place, command: str, *args):
    """``command`` (FT.SEARCH / FT.AGGREGATE) on the place's index with an explicit engine timeout, under the
    socket timeout.

    The search module's default (500 ms) cut counts at 1M memories short without
    an error; with ON_TIMEOUT FAIL (embedded) a query past this limit is an error
    instead of a partial answer.
    """
    full = (command, place.collection, *args, "TIMEOUT", str(settings.MEMADMIN_QUERY_TIMEOUT_MS), "DIALECT", "2")
    with store.store_errors():
        try:
            return store.client(on=place.store).execute_command(*full)
        except vexc.ResponseError as exc:
            if not missing_index(exc):
                raise
        # The index went away behind our back (dropped by hand, server replaced): recreate it once.
        forget(place)
        ensure(place)
        return store.client(on=place.store).execute_command(*full)


def _return(fields) -> list[str]:
    return ["RETURN", str(len(fields)), *fields]


def search(
    place: Place,
    query: str,
    *,
    offset: int = 0,
    limit: int = 10,
    sort_by: str | None = None,
    descending: bool = True,
    fields=RETURN_FIELDS,
) -> tuple[int, list[tuple[str, dict]]]:
    """(total, [(key, {field: bytes})]) of one page of a filter query."""
    ensure(place)
    sort = ["SORTBY", sort_by, "DESC" if descending else "ASC"] if sort_by else []
    reply = ft(place, "FT.SEARCH", query, *sort, "LIMIT", str(offset), str(limit), *_return(fields))
    return int(reply[0]), _documents(reply)


def knn(
    place: Place, query: str, vector: bytes, *, candidates: int, limit: int, fields=RETURN_FIELDS
) -> list[tuple[str, dict]]:
    """Nearest neighbours among the filter's matches; each document carries ``vector_score``."""
    ensure(place)
    knn_query = f"({query})=>[KNN {candidates} @embedding $vec AS vector_score]"
    if query == "*":
        knn_query = f"*=>[KNN {candidates} @embedding $vec AS vector_score]"
    reply = ft(
        place,
        "FT.SEARCH",
        knn_query,
        "PARAMS",
        "2",
        "vec",
        vector,
        "SORTBY",
        "vector_score",
        "ASC",
        "LIMIT",
        "0",
        str(limit),
        *_return((*fields, "vector_score")),
    )
    return _documents(reply)


def keyword(
    place: Place, query: str, terms: list[str], *, limit: int, fields=RETURN_FIELDS
) -> list[tuple[str, dict, float]]:
    """Memories among the filter's matches whose text (the TEXT field ``memory``) holds any of ``terms``
    (plain words: ranking.keyword_terms), best first, each with its BM25 score and its embedding (so its
    similarity can be computed by the caller too)."""
    ensure(place)
    text = "@memory:(" + "|".join(terms) + ")"
    clause = text if query == "*" else f"({query}) {text}"
    reply = ft(
        place,
        "FT.SEARCH",
        clause,
        "WITHSCORES",
        "SCORER",
        "BM25STD",
        "LIMIT",
        "0",
        str(limit),
        *_return((*fields, "embedding")),
    )
    return [
        (decode(reply[i]), dict(zip(reply[i + 2][::2], reply[i + 2][1::2])), float(reply[i + 1]))
        for i in range(1, len(reply) - 2, 3)
    ]


def _documents(reply) -> list[tuple[str, dict]]:
    docs = []
    for i in range(1, len(reply) - 1, 2):
        docs.append((decode(reply[i]), dict(zip(reply[i + 1][::2], reply[i + 1][1::2]))))
    return docs


def held(place: Place, memory_ids: list[str], *, chunk: int = 500) -> set[str]:
    """Which of these memory ids the index holds: one NOCONTENT TAG lookup per chunk, pipelined
    (the consistency monitor asks this for every key it walks)."""
    ensure(place)
    tail = ("TIMEOUT", str(settings.MEMADMIN_QUERY_TIMEOUT_MS), "DIALECT", "2")
    with store.store_errors():
        pipe = store.client(on=place.store).pipeline(transaction=False)
        for start in range(0, len(memory_ids), chunk):
            part = memory_ids[start : start + chunk]
            query = "@memory_id:{" + " | ".join(escape_tag(i) for i in part) + "}"
            pipe.execute_command("FT.SEARCH", place.collection, query, "NOCONTENT", "LIMIT", "0", str(len(part)), *tail)
        replies = pipe.execute()
    return {memory_id_of(place.collection, key) for reply in replies for key in reply[1:]}


def hashes_held(place: Place, pairs: list[tuple[str, str]], *, chunk: int = 200) -> set[tuple[str, str]]:
    """Which (user_id, hash) pairs already have a memory in the collection: one NOCONTENT lookup per
    chunk of hashes, pipelined, matched to users from the returned fields (an import skips those)."""
    ensure(place)
    if not pairs:
        return set()
    tail = ("TIMEOUT", str(settings.MEMADMIN_QUERY_TIMEOUT_MS), "DIALECT", "2")
    hashes = sorted({h for _, h in pairs})
    with store.store_errors():
        pipe = store.client(on=place.store).pipeline(transaction=False)
        for start in range(0, len(hashes), chunk):
            part = hashes[start : start + chunk]
            query = "@hash:{" + " | ".join(escape_tag(h) for h in part) + "}"
            # Up to 10,000 holders per chunk: enough for any real collection (the same text for that many users).
            pipe.execute_command(
                "FT.SEARCH", place.collection, query, "LIMIT", "0", "10000", *_return(("user_id", "hash")), *tail
            )
        replies = pipe.execute()
    found = set()
    for reply in replies:
        for _, fields in _documents(reply):
            found.add((decode(fields.get(b"user_id", b"")), decode(fields.get(b"hash", b""))))
    return found & set(pairs)


def count(place: Place, query: str) -> int:
    ensure(place)
    return int(ft(place, "FT.SEARCH", query, "LIMIT", "0", "0")[0])


def group_counts(place: Place, query: str, field: str, *, limit: int | None = None) -> Counter:
    """Matches per value of ``field``; with ``limit``, only the largest groups leave the engine."""
    ensure(place)
    tail = ["SORTBY", "2", "@n", "DESC", "MAX", str(limit)] if limit else []
    reply = ft(place, "FT.AGGREGATE", query, "GROUPBY", "1", f"@{field}", "REDUCE", "COUNT", "0", "AS", "n", *tail)
    counts: Counter = Counter()
    for fields in _rows(reply):
        if field in fields:
            counts[fields[field]] += int(fields["n"])
    return counts


def distinct(place: Place, query: str, field: str) -> int:
    """How many distinct values of ``field`` the matches have (the engine's COUNT_DISTINCT)."""
    ensure(place)
    reply = ft(place, "FT.AGGREGATE", query, "GROUPBY", "0", "REDUCE", "COUNT_DISTINCT", "1", f"@{field}", "AS", "d")
    rows = reply[1:]
    return int(dict(zip(rows[0][::2], rows[0][1::2])).get(b"d", 0)) if rows else 0


def distinct_values(place: Place, query: str, field: str) -> set[str]:
    """The distinct values of ``field`` among the matches (one GROUPBY row each), for unions across apps."""
    ensure(place)
    reply = ft(place, "FT.AGGREGATE", query, "GROUPBY", "1", f"@{field}")
    return {fields[field] for fields in _rows(reply) if field in fields}


def group_latest(place: Place, query: str, field: str) -> dict[str, float]:
    """For each value of ``field``: the newest created_at or updated_at of its matches (epoch s)."""
    ensure(place)
    reply = ft(
        place,
        "FT.AGGREGATE",
        query,
        "LOAD",
        "2",
        "@created_at",
        "@updated_at",
        "GROUPBY",
        "1",
        f"@{field}",
        "REDUCE",
        "MAX",
        "1",
        "@created_at",
        "AS",
        "c",
        "REDUCE",
        "MAX",
        "1",
        "@updated_at",
        "AS",
        "u",
        "LIMIT",
        "0",
        "1000000",
    )
    latest = {}
    for fields in _rows(reply):
        if fields.get(field):
            latest[fields[field]] = max(_number(fields.get("c")), _number(fields.get("u")))
    return latest


def group_summary(place: Place, query: str, field: str, *, limit: int) -> dict[str, tuple[int, float]]:
    """For the ``limit`` largest values of ``field`` among the matches: (how many, the newest created_at or
    updated_at in epoch s), in one FT.AGGREGATE over the matches only."""
    ensure(place)
    reply = ft(
        place,
        "FT.AGGREGATE",
        query,
        "LOAD",
        "2",
        "@created_at",
        "@updated_at",
        "GROUPBY",
        "1",
        f"@{field}",
        "REDUCE",
        "COUNT",
        "0",
        "AS",
        "n",
        "REDUCE",
        "MAX",
        "1",
        "@created_at",
        "AS",
        "c",
        "REDUCE",
        "MAX",
        "1",
        "@updated_at",
        "AS",
        "u",
        "SORTBY",
        "2",
        "@n",
        "DESC",
        "MAX",
        str(limit + 1),
    )
    groups = {}
    for fields in _rows(reply):
        if fields.get(field):
            groups[fields[field]] = (
                int(float(fields.get("n") or 0)),
                max(_number(fields.get("c")), _number(fields.get("u"))),
            )
    return dict(list(groups.items())[:limit])  # one more was asked for: the null group may be among them


def _rows(reply) -> Iterator[dict[str, str]]:
    """An FT.AGGREGATE reply's rows as dicts. The memories without a grouped field form a group too, its value
    null: left out here, so that "no run" never reads as a run called "None"."""
    for row in reply[1:]:
        yield {decode(k): decode(v) for k, v in zip(row[::2], row[1::2]) if v is not None}


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def batches(
    place: Place, query: str, *, batch_size: int = 500, fields=RETURN_FIELDS
) -> Iterator[list[tuple[str, dict]]]:
    """Every match through an FT.AGGREGATE cursor: no paging window, flat memory, (key, fields) pairs."""
    ensure(place)
    load = ["LOAD", str(len(fields) + 1), "@__key", *(f"@{f}" for f in fields)]
    reply = ft(place, "FT.AGGREGATE", query, *load, "WITHCURSOR", "COUNT", str(batch_size))
    while True:
        rows, cursor = reply
        batch = []
        for row in rows[1:]:
            values = dict(zip(row[::2], row[1::2]))
            batch.append((decode(values.pop(b"__key", b"")), values))
        if batch:
            yield batch
        if not int(cursor):
            return
        with store.store_errors():
            reply = store.client(on=place.store).execute_command(
                "FT.CURSOR", "READ", place.collection, cursor, "COUNT", str(batch_size)
            )


# --- agents and runs (selectors.memory_entities) ---------------------------------------


def tag_values(place: Place, field: str) -> set[str]:
    """Every value the index holds for a TAG field (FT.TAGVALS: O(distinct values), never O(memories)).

    The engine may keep a value whose last memory was deleted until its garbage collector runs, so callers
    count each value before they show it. A server without FT.TAGVALS (valkey-search) is asked with one
    GROUPBY over the whole index instead, which costs O(memories)."""
    ensure(place)
    with store.store_errors():
        try:
            reply = store.client(on=place.store).execute_command("FT.TAGVALS", place.collection, field)
        except vexc.ResponseError as exc:
            if missing_index(exc):
                raise
            return distinct_values(place, "*", field)
    return {decode(value) for value in reply}


def entity_summary(place: Place, query: str, field: str) -> dict[str, dict]:
    """Per value of ``field`` among the matches: memories, distinct people, first and last write (epoch s),
    in one FT.AGGREGATE over the matches only (callers pin ``field`` to the values of one page)."""
    ensure(place)
    load = ["LOAD", "3", "@user_id", "@created_at", "@updated_at"]
    count = ["REDUCE", "COUNT", "0", "AS", "n", "REDUCE", "COUNT_DISTINCT", "1", "@user_id", "AS", "p"]
    when = ["REDUCE", "MIN", "1", "@created_at", "AS", "f", "REDUCE", "MAX", "1", "@created_at", "AS", "c"]
    when += ["REDUCE", "MAX", "1", "@updated_at", "AS", "u"]
    reply = ft(place, "FT.AGGREGATE", query, *load, "GROUPBY", "1", f"@{field}", *count, *when, "LIMIT", "0", "100000")
    summary = {}
    for fields in _rows(reply):
        if fields.get(field):
            summary[fields[field]] = {
                "count": int(float(fields.get("n") or 0)),
                "people": int(float(fields.get("p") or 0)),
                "first": _number(fields.get("f")),
                "last": max(_number(fields.get("c")), _number(fields.get("u"))),
            }
    return summary


def people_of(place: Place, query: str, field: str) -> dict[str, set[str]]:
    """The distinct user_ids per value of ``field`` among the matches (to count one person in two apps once)."""
    ensure(place)
    reply = ft(place, "FT.AGGREGATE", query, "GROUPBY", "2", f"@{field}", "@user_id", "LIMIT", "0", "1000000")
    people: dict[str, set[str]] = {}
    for fields in _rows(reply):
        if fields.get(field) and fields.get("user_id"):
            people.setdefault(fields[field], set()).add(fields["user_id"])
    return people
