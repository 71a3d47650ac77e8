"""The index layer: every FT.* command memadmin sends is built here, and nowhere else.

One search index per app collection (DESIGN "Storage"). This module creates and
adopts those indexes, reports their health (FT.INFO), and answers the queries
the selectors and the deletion engine need: search, count, grouped counts,
distinct values and cursor batches. Callers pass a rendered filter query
(filters.render) and get plain Python values back; nobody else parses replies.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from valkey import exceptions as vexc

from memadmin.memory import store
from memadmin.memory.errors import Conflict
from memadmin.memory.ids import TAG_SEPARATOR, escape_tag

logger = logging.getLogger("memadmin.index")

RETURN_FIELDS = ("memory_id", "hash", "memory", "user_id", "agent_id", "run_id", "metadata", "created_at", "updated_at")
MIN_VALKEY_SEARCH = 10201  # valkey-search 1.2.1: non-vector FT.SEARCH, SORTBY, tag escapes

_lock = threading.RLock()
_indexed: set[tuple[str, str]] = set()  # (store, collection): an app that moved is checked again on its new store
_generation = -1


def decode(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def pairs(items) -> dict:
    """A flat [name, value, name, value...] reply as a dict keyed by str."""
    items = list(items)
    return {decode(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def memory_id_of(collection: str, key) -> str:
    """The memory id in a key: everything after the collection's prefix (an id may hold ":" itself)."""
    return decode(key).removeprefix(store.key_prefix(collection))


def _missing(exc: Exception) -> bool:
    text = str(exc).lower()
    return "unknown index" in text or "no such index" in text


# --- creating, adopting, inspecting ------------------------------------------------


def schema(collection: str, *, dims: int | None = None, algorithm: str | None = None,
           prefix: str | None = None) -> list[str]:  # fmt: skip
    """FT.CREATE for one collection with Mem0's fields, and two deliberate differences: TAGs are
    CASESENSITIVE and split only on U+001F (ids are exact and never split), and the PREFIX ends with ':'
    so collection "app" never indexes the keys of collection "app2"."""
    dims = dims or settings.MEMADMIN_EMBEDDER_DIMS
    algorithm = algorithm or settings.MEMADMIN_INDEX_ALGORITHM
    command = ["FT.CREATE", collection, "ON", "HASH", "PREFIX", "1", prefix or store.key_prefix(collection), "SCHEMA"]
    for name in ("memory_id", "hash", "agent_id", "run_id", "user_id"):
        command += [name, "TAG", "SEPARATOR", TAG_SEPARATOR, "CASESENSITIVE"]
    command += ["memory", "TEXT", "metadata", "TAG", "SEPARATOR", TAG_SEPARATOR, "CASESENSITIVE"]
    command += ["created_at", "NUMERIC", "SORTABLE", "updated_at", "NUMERIC", "SORTABLE"]
    if algorithm == "flat":
        vector = ["FLAT", "6", "TYPE", "FLOAT32", "DIM", str(dims), "DISTANCE_METRIC", "COSINE"]
    else:
        vector = ["HNSW", "12", "TYPE", "FLOAT32", "DIM", str(dims), "DISTANCE_METRIC", "COSINE",
                  "M", "16", "EF_CONSTRUCTION", "200", "EF_RUNTIME", "10"]  # fmt: skip
    return command + ["embedding", "VECTOR", *vector]


def create(collection: str, *, dims: int | None = None, algorithm: str | None = None,
           prefix: str | None = None, on: str | None = None) -> None:  # fmt: skip
    """FT.CREATE. A new index's counters (documents, failures, document ids) start again from 0, so what
    was measured on the old one (its health, its creation count) can no longer vouch for it.

    ``on`` names a store other than the collection's own (a move builds the index on its target)."""
    with store.store_errors():
        client = store.client(collection, on=on)
        client.execute_command(*schema(collection, dims=dims, algorithm=algorithm, prefix=prefix))
        client.delete(health_key(collection), _created_key(collection))


def drop(collection: str, *, on: str | None = None) -> None:
    """Drop the index, never the hashes (no DD); an index already gone is fine (a killed job's retry)."""
    with store.store_errors():
        try:
            store.client(collection, on=on).execute_command("FT.DROPINDEX", collection)
        except vexc.ResponseError as exc:
            if not _missing(exc):
                raise


def info(collection: str, *, on: str | None = None) -> dict | None:
    """FT.INFO as a dict, or None when there is no such index."""
    with store.store_errors():
        try:
            return pairs(store.client(collection, on=on).execute_command("FT.INFO", collection))
        except vexc.ResponseError as exc:
            if _missing(exc):
                return None
            raise


def prefixes(details: dict) -> list[str]:
    return [decode(p) for p in pairs(details.get("index_definition", [])).get("prefixes", [])]


def is_ours(details: dict, collection: str) -> bool:
    if prefixes(details) != [store.key_prefix(collection)]:
        return False
    for attribute in details.get("attributes", []):
        flags = [decode(a) for a in attribute]
        if "TAG" in flags and ("CASESENSITIVE" not in flags or TAG_SEPARATOR not in flags):
            return False
    return True


def _vector_shape(details: dict) -> tuple[int | None, str]:
    for attribute in details.get("attributes", []):
        flags = [decode(a) for a in attribute]
        if "VECTOR" in flags:
            upper = [f.upper() for f in flags]
            dims = int(flags[upper.index("DIM") + 1]) if "DIM" in upper else None
            return dims, ("flat" if "FLAT" in upper else "hnsw")
    return None, settings.MEMADMIN_INDEX_ALGORITHM


def wait_indexed(collection: str, timeout: float = 600.0, *, on: str | None = None) -> None:
    """Until the index's background scan (after FT.CREATE over existing keys) has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        details = info(collection, on=on) or {}
        if decode(details.get("indexing", b"0")) in ("0", "0.0"):
            return
        time.sleep(0.1)


def check_search_module(collection: str | None = None, *, on: str | None = None) -> None:
    modules = store.client(collection, on=on).execute_command("MODULE", "LIST")
    for module in modules:
        fields = pairs(module)
        if decode(fields.get("name", "")).lower() in ("search", "ft"):
            path = decode(fields.get("path", ""))
            version = int(fields.get("ver", 0))
            if "redisearch" not in path and version < MIN_VALKEY_SEARCH:
                raise Conflict(
                    f"valkey-search {version} is too old: memadmin needs >= 1.2.1 for filtered, sorted "
                    "FT.SEARCH without a vector. Upgrade the module (e.g. the valkey-bundle image)."
                )
            return
    raise Conflict("The Valkey server has no search module: load valkey-search (>= 1.2.1) or RediSearch.")


def _marker(collection: str) -> str:
    return f"memadmin:index:{collection}"


def _signature() -> bytes:
    return f"v1:{settings.MEMADMIN_EMBEDDER_DIMS}".encode()


def _fresh() -> None:
    # store.reset() (tests, a restarted server) invalidates what this process believed about indexes.
    global _generation
    if _generation != store.generation():
        _indexed.clear()
        _generation = store.generation()


def ensure(collection: str) -> None:
    """Create the app's index, or adopt one Mem0 created with its case-insensitive, comma-split TAGs.

    A verified index leaves a marker key, so other processes skip FT.INFO (~200 ms at 1M memories).
    """
    _fresh()
    key = (store.store_of(collection), collection)
    if key in _indexed:
        return
    with _lock, store.store_errors():
        if key in _indexed:
            return
        client = store.client(collection)
        if client.get(_marker(collection)) == _signature():
            _indexed.add(key)
            return
        check_search_module(collection)
        details = info(collection)
        dims = settings.MEMADMIN_EMBEDDER_DIMS
        if details is None:
            try:
                create(collection)
            except vexc.ResponseError as exc:
                # Another process (web workers writing a new app's first memories at once) created it
                # between our FT.INFO and FT.CREATE: check theirs like any index found.
                if "already exists" not in str(exc).lower():
                    raise
                details = info(collection)
            else:
                # FT.CREATE reads the keys already under the prefix in the background; until it has, the
                # index is "indexing" and cannot vouch for a count (a brand-new prefix takes milliseconds).
                wait_indexed(collection, timeout=30)
                _record_created(collection)
        if details is None:
            pass  # made by this process just now
        elif prefixes(details) == [store.offboarding_prefix(collection)]:
            _indexed.add(key)  # an offboarding is deleting the keys: its stand-in answers "0 memories"
            return
        elif not is_ours(details, collection):
            existing_dims, algorithm = _vector_shape(details)
            if existing_dims and existing_dims != dims:
                raise Conflict(
                    f"Collection {collection} holds {existing_dims}-dimension vectors but the embedder makes {dims}: "
                    "set MEMADMIN_EMBEDDER_* to the model its agents use."
                )
            logger.warning("Re-indexing collection %s with case-sensitive, unsplittable TAGs.", collection)
            # Dropping an index without DD keeps the hashes; the new index re-reads them.
            drop(collection)
            create(collection, dims=dims, algorithm=algorithm)
            wait_indexed(collection)
            _record_created(collection)
        else:
            existing_dims, _ = _vector_shape(details)
            if existing_dims and existing_dims != dims:
                raise Conflict(f"Collection {collection} holds {existing_dims}-dimension vectors, not {dims}.")
        client.set(_marker(collection), _signature())
        _indexed.add(key)


def health_key(collection: str) -> str:
    """The Valkey hash where the consistency monitor keeps an app's health (memadmin/memory/consistency.py)."""
    return f"memadmin:health:{collection}"


def _created_key(collection: str) -> str:
    return f"memadmin:index-created:{collection}"


def _record_created(collection: str, *, on: str | None = None) -> None:
    """The count an index made itself: FT.CREATE's own scan read every key under the prefix, so once it
    has finished, documents + failures are the keys there were. It stands in for a consistency check
    until the monitor's first pass (an index someone else made, e.g. with SKIPINITIALSCAN, has none)."""
    details = inspect(collection, on=on)
    if details.exists and not details.indexing:
        with store.store_errors():
            store.client(collection, on=on).set(_created_key(collection), json.dumps(
                {"at": datetime.now(UTC).isoformat(), "keys": details.num_docs + details.failures,
                 "docs": details.num_docs}))  # fmt: skip


def created_baseline(collection: str) -> dict | None:
    """{"at", "keys"} when this index was made by ensure() and its initial scan had finished, else None."""
    with store.store_errors():
        raw = store.client(collection).get(_created_key(collection))
    return json.loads(raw) if raw else None


def forget(collection: str) -> None:
    """The index was dropped or replaced: re-check it before the next query, and close Mem0's handle."""
    with _lock:
        _indexed.discard((store.store_of(collection), collection))
        with store.store_errors():
            store.client(collection).delete(_marker(collection), _created_key(collection))
    store.drop_memory(collection)


def build(collection: str, *, on: str) -> IndexInfo:
    """Make the collection's index on store ``on`` over the keys already there (a move's target), wait for
    its scan, and record the count it made (the health baseline until the monitor's first pass)."""
    drop(collection, on=on)
    create(collection, on=on)
    wait_indexed(collection, on=on)
    _record_created(collection, on=on)
    with store.store_errors():
        store.client(collection, on=on).set(_marker(collection), _signature())
    return inspect(collection, on=on)


def remove(collection: str, *, on: str) -> None:
    """Drop the collection's index and every key memadmin keeps about it on store ``on`` (a move's source,
    once its keys are gone). The hashes themselves are the caller's to delete."""
    drop(collection, on=on)
    with store.store_errors():
        store.client(collection, on=on).delete(_marker(collection), _created_key(collection), health_key(collection))


def forget_all() -> None:
    """After the server lost its indexes (FLUSHALL, a new empty server): re-check before the next query."""
    with _lock:
        _indexed.clear()


def mem0(collection: str):
    """Mem0's Memory for a collection, only once its index exists: a Memory that wrote ahead of
    FT.CREATE would leave the hash to the background scan, and a query right after would miss it."""
    ensure(collection)
    return store.memory_for(collection)


def embed(collection: str, text: str) -> list[float]:
    with store.store_errors():
        return mem0(collection).embedding_model.embed(text, "search")


def embed_many(collection: str, texts: list[str]) -> list[list[float]]:
    """Embeddings of many texts in one call to the configured embedder (Mem0's embed_batch: one encode
    for the local model, one request for hosted ones), as Mem0 itself would embed them on add."""
    with store.store_errors():
        vectors = mem0(collection).embedding_model.embed_batch(texts, "add")
    dims = settings.MEMADMIN_EMBEDDER_DIMS
    if len(vectors) != len(texts) or any(len(v) != dims for v in vectors):
        raise Conflict(f"The embedder did not return {len(texts)} vectors of {dims} dimensions; check "
                       "MEMADMIN_EMBEDDER_DIMS against the model.")  # fmt: skip
    return vectors


# --- health -------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexInfo:
    """What FT.INFO says about one app's index, read in one call."""

    exists: bool
    num_docs: int = 0
    failures: int = 0  # hash_indexing_failures: a counter since FT.CREATE, it never goes down
    indexing: bool = False
    percent_indexed: float = 1.0
    # RediSearch's document-id counter: +1 for every document added or re-indexed (HSET, RESTORE, COPY, a
    # RENAME from outside the prefix), never down. None when the engine does not report it (valkey-search).
    max_doc_id: int | None = None
    # The index reads another prefix than the collection's: an offboarding's empty stand-in.
    standin: bool = False


def inspect(collection: str, *, on: str | None = None) -> IndexInfo:
    details = info(collection, on=on)
    if details is None:
        return IndexInfo(exists=False)
    indexing = decode(details.get("indexing", b"0"))
    return IndexInfo(
        exists=True,
        num_docs=int(float(decode(details.get("num_docs", 0)))),
        failures=int(float(decode(details.get("hash_indexing_failures", 0)))),
        indexing=indexing not in ("0", "0.0"),
        percent_indexed=float(decode(details.get("percent_indexed", b"1"))),
        max_doc_id=int(float(decode(details["max_doc_id"]))) if "max_doc_id" in details else None,
        standin=prefixes(details) != [store.key_prefix(collection)],
    )


# --- queries --------------------------------------------------------------------------


def ft(*args):
    """An FT.SEARCH / FT.AGGREGATE with an explicit engine timeout, under the socket timeout.

    The search module's default (500 ms) cut counts at 1M memories short without
    an error; with ON_TIMEOUT FAIL (embedded) a query past this limit is an error
    instead of a partial answer.
    """
    tail = ("TIMEOUT", str(settings.MEMADMIN_QUERY_TIMEOUT_MS), "DIALECT", "2")
    with store.store_errors():
        try:
            return store.client(args[1]).execute_command(*args, *tail)
        except vexc.ResponseError as exc:
            if not _missing(exc):
                raise
        # The index went away behind our back (dropped by hand, server replaced): recreate it once.
        forget(args[1])
        ensure(args[1])
        return store.client(args[1]).execute_command(*args, *tail)


def _return(fields) -> list[str]:
    return ["RETURN", str(len(fields)), *fields]


def search(collection: str, query: str, *, offset: int = 0, limit: int = 10, sort_by: str | None = None,
           descending: bool = True, fields=RETURN_FIELDS) -> tuple[int, list[tuple[str, dict]]]:  # fmt: skip
    """(total, [(key, {field: bytes})]) of one page of a filter query."""
    ensure(collection)
    sort = ["SORTBY", sort_by, "DESC" if descending else "ASC"] if sort_by else []
    reply = ft("FT.SEARCH", collection, query, *sort, "LIMIT", str(offset), str(limit), *_return(fields))
    return int(reply[0]), _documents(reply)


def knn(collection: str, query: str, vector: bytes, *, candidates: int, limit: int,
        fields=RETURN_FIELDS) -> list[tuple[str, dict]]:  # fmt: skip
    """Nearest neighbours among the filter's matches; each document carries ``vector_score``."""
    ensure(collection)
    knn_query = f"({query})=>[KNN {candidates} @embedding $vec AS vector_score]"
    if query == "*":
        knn_query = f"*=>[KNN {candidates} @embedding $vec AS vector_score]"
    reply = ft("FT.SEARCH", collection, knn_query, "PARAMS", "2", "vec", vector, "SORTBY", "vector_score", "ASC",
               "LIMIT", "0", str(limit), *_return((*fields, "vector_score")))  # fmt: skip
    return _documents(reply)


def _documents(reply) -> list[tuple[str, dict]]:
    docs = []
    for i in range(1, len(reply) - 1, 2):
        docs.append((decode(reply[i]), dict(zip(reply[i + 1][::2], reply[i + 1][1::2]))))
    return docs


def held(collection: str, memory_ids: list[str], *, chunk: int = 500) -> set[str]:
    """Which of these memory ids the index holds: one NOCONTENT TAG lookup per chunk, pipelined
    (the consistency monitor asks this for every key it walks)."""
    ensure(collection)
    tail = ("TIMEOUT", str(settings.MEMADMIN_QUERY_TIMEOUT_MS), "DIALECT", "2")
    with store.store_errors():
        pipe = store.client(collection).pipeline(transaction=False)
        for start in range(0, len(memory_ids), chunk):
            part = memory_ids[start : start + chunk]
            query = "@memory_id:{" + " | ".join(escape_tag(i) for i in part) + "}"
            pipe.execute_command("FT.SEARCH", collection, query, "NOCONTENT", "LIMIT", "0", str(len(part)), *tail)
        replies = pipe.execute()
    return {memory_id_of(collection, key) for reply in replies for key in reply[1:]}


def hashes_held(collection: str, pairs: list[tuple[str, str]], *, chunk: int = 200) -> set[tuple[str, str]]:
    """Which (user_id, hash) pairs already have a memory in the collection: one NOCONTENT lookup per
    chunk of hashes, pipelined, matched to users from the returned fields (an import skips those)."""
    ensure(collection)
    if not pairs:
        return set()
    tail = ("TIMEOUT", str(settings.MEMADMIN_QUERY_TIMEOUT_MS), "DIALECT", "2")
    hashes = sorted({h for _, h in pairs})
    with store.store_errors():
        pipe = store.client().pipeline(transaction=False)
        for start in range(0, len(hashes), chunk):
            part = hashes[start : start + chunk]
            query = "@hash:{" + " | ".join(escape_tag(h) for h in part) + "}"
            # Up to 10,000 holders per chunk: enough for any real collection (the same text for that many users).
            pipe.execute_command("FT.SEARCH", collection, query, "LIMIT", "0", "10000",
                                 *_return(("user_id", "hash")), *tail)  # fmt: skip
        replies = pipe.execute()
    found = set()
    for reply in replies:
        for _, fields in _documents(reply):
            found.add((decode(fields.get(b"user_id", b"")), decode(fields.get(b"hash", b""))))
    return found & set(pairs)


def count(collection: str, query: str) -> int:
    ensure(collection)
    return int(ft("FT.SEARCH", collection, query, "LIMIT", "0", "0")[0])


def group_counts(collection: str, query: str, field: str, *, limit: int | None = None) -> Counter:
    """Matches per value of ``field``; with ``limit``, only the largest groups leave the engine."""
    ensure(collection)
    tail = ["SORTBY", "2", "@n", "DESC", "MAX", str(limit)] if limit else []
    reply = ft("FT.AGGREGATE", collection, query, "GROUPBY", "1", f"@{field}", "REDUCE", "COUNT", "0", "AS", "n",
               *tail)  # fmt: skip
    counts: Counter = Counter()
    for row in reply[1:]:
        fields = dict(zip(row[::2], row[1::2]))
        value = fields.get(field.encode())
        if value is not None:
            counts[decode(value)] += int(fields[b"n"])
    return counts


def distinct(collection: str, query: str, field: str) -> int:
    """How many distinct values of ``field`` the matches have (the engine's COUNT_DISTINCT)."""
    ensure(collection)
    reply = ft("FT.AGGREGATE", collection, query, "GROUPBY", "0",
               "REDUCE", "COUNT_DISTINCT", "1", f"@{field}", "AS", "d")  # fmt: skip
    rows = reply[1:]
    return int(dict(zip(rows[0][::2], rows[0][1::2])).get(b"d", 0)) if rows else 0


def distinct_values(collection: str, query: str, field: str) -> set[str]:
    """The distinct values of ``field`` among the matches (one GROUPBY row each), for unions across apps."""
    ensure(collection)
    reply = ft("FT.AGGREGATE", collection, query, "GROUPBY", "1", f"@{field}")
    values = set()
    for row in reply[1:]:
        value = dict(zip(row[::2], row[1::2])).get(field.encode())
        if value is not None:
            values.add(decode(value))
    return values


def group_latest(collection: str, query: str, field: str) -> dict[str, float]:
    """For each value of ``field``: the newest created_at or updated_at of its matches (epoch s)."""
    ensure(collection)
    reply = ft("FT.AGGREGATE", collection, query, "LOAD", "2", "@created_at", "@updated_at",
               "GROUPBY", "1", f"@{field}", "REDUCE", "MAX", "1", "@created_at", "AS", "c",
               "REDUCE", "MAX", "1", "@updated_at", "AS", "u", "LIMIT", "0", "1000000")  # fmt: skip
    latest = {}
    for row in reply[1:]:
        fields = {decode(k): decode(v) for k, v in zip(row[::2], row[1::2])}
        if fields.get(field):
            latest[fields[field]] = max(_number(fields.get("c")), _number(fields.get("u")))
    return latest


def group_summary(collection: str, query: str, field: str, *, limit: int) -> dict[str, tuple[int, float]]:
    """For the ``limit`` largest values of ``field`` among the matches: (how many, the newest created_at or
    updated_at in epoch s), in one FT.AGGREGATE over the matches only."""
    ensure(collection)
    reply = ft("FT.AGGREGATE", collection, query, "LOAD", "2", "@created_at", "@updated_at",
               "GROUPBY", "1", f"@{field}", "REDUCE", "COUNT", "0", "AS", "n",
               "REDUCE", "MAX", "1", "@created_at", "AS", "c", "REDUCE", "MAX", "1", "@updated_at", "AS", "u",
               "SORTBY", "2", "@n", "DESC", "MAX", str(limit))  # fmt: skip
    groups = {}
    for row in reply[1:]:
        fields = {decode(k): decode(v) for k, v in zip(row[::2], row[1::2])}
        if fields.get(field):
            groups[fields[field]] = (
                int(float(fields.get("n") or 0)),
                max(_number(fields.get("c")), _number(fields.get("u"))),
            )
    return groups


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def batches(collection: str, query: str, *, batch_size: int = 500,
            fields=RETURN_FIELDS) -> Iterator[list[tuple[str, dict]]]:  # fmt: skip
    """Every match through an FT.AGGREGATE cursor: no paging window, flat memory, (key, fields) pairs."""
    ensure(collection)
    load = ["LOAD", str(len(fields) + 1), "@__key", *(f"@{f}" for f in fields)]
    reply = ft("FT.AGGREGATE", collection, query, *load, "WITHCURSOR", "COUNT", str(batch_size))
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
            reply = store.client(collection).execute_command(
                "FT.CURSOR", "READ", collection, cursor, "COUNT", str(batch_size)
            )
