"""Paging to any depth: keyset cursors over (created_at DESC, created_at_us DESC, memory_id ASC), for
selectors.memory_page_after.

A cursor holds, per app, where its last page ended; each page is a few FT.SEARCH calls whose cost does not
grow with the depth (index_queries.search builds them)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable

from memadmin.memory import index, index_queries, store
from memadmin.memory.errors import ValidationError
from memadmin.memory.guarded import CREATED_MICROS
from memadmin.memory.ids import escape_tag
from memadmin.memory.records import MemoryRecord
from memadmin.memory.scope import AppRef


def records_from(app: AppRef, documents: list[tuple[str, dict]], extra: Callable | None = None) -> list[MemoryRecord]:
    records = []
    for key, fields in documents:
        record = MemoryRecord.from_hash(app.app_id, key, fields)
        if extra:
            extra(record, fields)
        records.append(record)
    return records


# --- paging to the end: keyset cursors over (created_at DESC, then newest first within the second) ------
#
# FT.SEARCH ... LIMIT offset n costs O(offset) in the engine and stops at MAXSEARCHRESULTS (10,000 by
# default), so pages are cut by position instead: a cursor holds, per app, the created_at of the last
# memory shown and how many memories with exactly that created_at were shown (ties are ordered by
# created_at_us, then memory_id: see ordered()). The next page is the rest of that created_at group and one for older
# memories (@created_at:[-inf (c]), each LIMIT 0 page_size: its cost does not grow with the depth.
# Memories without created_at (never written by Mem0) are not reachable by paging; export reaches them.


def _tie_query(query: str, created: str) -> str:
    return f"({query}) @created_at:[{created} {created}]" if query != "*" else f"@created_at:[{created} {created}]"


def _older_query(query: str, bound: str) -> str:
    part = f"@created_at:[-inf {bound}]"
    return f"({query}) {part}" if query != "*" else part


# A cursor's offset inside one created_at group (or among undated memories) is a LIMIT offset: the
# engine answers at most MAXSEARCHRESULTS (10,000) rows of a query, so a larger one is not a real cursor.
MAX_TIE_OFFSET = 10_000

UNDATED = "none"  # the position of memories without created_at: after all dated ones, by memory_id


def _undated_query(query: str) -> str:
    return f"({query}) -@created_at:[-inf +inf]" if query != "*" else "-@created_at:[-inf +inf]"


def keyset_rows(app: AppRef, query: str, position: list | None, size: int) -> tuple[list, int | None]:
    """Up to ``size`` (created_at, created_at_us, record) of one app from ``position``, in page order; on the
    first page also the app's number of matches when the same query could count them (else None).
    created_at_us is 0 for memories without it: several apps' pages merge by (created_at, created_at_us)."""
    micros: dict[str, int] = {}
    rows, total = _rows(app, query, position, size, micros)
    return [(created, micros.get(record.id, 0), record) for created, record in rows], total


def _rows(app: AppRef, query: str, position: list | None, size: int, micros: dict) -> tuple[list, int | None]:

    def ordered(found):
        # SORTBY created_at leaves ties in no particular order: within one second the newest first by the
        # microseconds memadmin's adds keep (guarded.py), then (memories Mem0 OSS wrote) by memory_id.
        return sorted(found, key=lambda row: (-created_number(row[0]), -micros.get(row[1].id, 0), row[1].id.encode()))

    def fetch(q, offset, limit, sort_by, descending, with_total=False):
        found, documents = index_queries.search(
            app.place, q, offset=offset, limit=limit, sort_by=sort_by, descending=descending
        )
        for (key, fields), value in zip(documents, _stored_micros(app, [key for key, _ in documents])):
            micros[_memory_id(key, fields)] = value
        rows = [
            (index.decode(f.get(b"created_at", b"")), r) for (_, f), r in zip(documents, records_from(app, documents))
        ]
        return (rows, found) if with_total else rows

    def tie(created, skip, take):
        # The order inside one second is not the engine's: the second's ids and microseconds are read whole
        # (a cursor's offset into it is at most MAX_TIE_OFFSET, like the engine's own answers) and ordered
        # here; then only the page's memories are read.
        tie_query = _tie_query(query, created)
        _, documents = index_queries.search(app.place, tie_query, offset=0, limit=MAX_TIE_OFFSET, fields=("memory_id",))
        stored = _stored_micros(app, [key for key, _ in documents])
        keys = sorted((-value, _memory_id(key, fields).encode()) for (key, fields), value in zip(documents, stored))
        ids = [memory_id.decode() for _, memory_id in keys[skip : skip + take]]
        if not ids:
            return []
        wanted = "@memory_id:{" + " | ".join(escape_tag(memory_id) for memory_id in ids) + "}"
        rows = fetch(f"({tie_query}) {wanted}", 0, len(ids), None, False)
        if len(rows) != len(ids):  # a memory whose hash lacks its memory_id field: read the second whole
            rows = ordered(fetch(tie_query, 0, MAX_TIE_OFFSET, None, False))[skip : skip + take]
        return ordered(rows)

    if position and position[0] == UNDATED:
        return fetch(_undated_query(query), position[1], size, "memory_id", False), None
    rows, bound, total, older = [], "+inf", None, None
    if position:
        created, shown = position
        rows = tie(created, shown, size)
        bound = f"({created}"
    else:
        # First page: the plain query sorted by created_at gives the page and the total in one call. Its
        # rows are the newest dated ones unless an undated memory is among them; then go the long way.
        first, found = fetch(query, 0, size + 1, "created_at", True, with_total=True)
        if all(created for created, _ in first):
            older, total = first, found
    need = size - len(rows)
    if need == 0:
        return rows, total
    if older is None:
        older = fetch(_older_query(query, bound), 0, need + 1, "created_at", True)
    if len(older) <= need:  # the dated memories end here; the undated ones follow
        rows += ordered(older)
        if len(rows) < size and (total is None or total > len(rows)):
            rows += fetch(_undated_query(query), 0, size - len(rows), "memory_id", False)
        return rows, total
    last = older[need - 1][0]
    if older[need][0] != last:  # the page ends between two created_at values
        return rows + ordered(older[:need]), total
    head = [row for row in older[:need] if row[0] != last]
    tied = tie(last, 0, need - len(head))
    return rows + ordered(head) + tied, total


def _stored_micros(app: AppRef, keys: list[str]) -> list[int]:
    """created_at_us of these hashes (0 where absent), read from the hashes: valkey-search returns only the
    fields its index declares, and created_at_us is outside Mem0's schema. One pipelined round trip."""
    if not keys:
        return []
    with store.store_errors():
        pipe = store.client(on=app.store).pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, CREATED_MICROS)
        values = pipe.execute()
    return [int(value) if value and value.isdigit() else 0 for value in values]


def _memory_id(key: str, fields: dict) -> str:
    return index.decode(fields.get(b"memory_id", b"")) or key.rsplit(":", 1)[-1]


def created_number(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("-inf")


def advance(position: list | None, taken: list) -> list | None:
    if not taken:
        return position
    last = taken[-1][0] or UNDATED
    same = sum(1 for created, _ in taken if (created or UNDATED) == last)
    if position and position[0] == last:
        same += position[1]
    return [last, same]


def encode_cursor(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


_NUMBER = re.compile(r"-?\d{1,20}(\.\d{1,20})?")


def decode_cursor(token: str) -> dict:
    """A cursor from outside: its numbers end up in a query, so each is checked to be a plain number."""
    try:
        if len(token) > 4096:
            raise ValueError
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        positions = state["p"]
        if not all(isinstance(state.get(k), int) and state[k] >= 0 for k in "nt") or not isinstance(positions, dict):
            raise ValueError
        for value in positions.values():
            if value is None:
                continue
            if not (
                isinstance(value, list)
                and len(value) == 2
                and isinstance(value[0], str)
                and (value[0] == UNDATED or _NUMBER.fullmatch(value[0]))
                and isinstance(value[1], int)
                and 0 <= value[1] <= MAX_TIE_OFFSET
            ):
                raise ValueError
        return state
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ValidationError(
            "The page cursor is not valid; start again from the first page.", field="cursor"
        ) from None
