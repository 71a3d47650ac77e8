"""Batched, resumable deletions for background jobs: offboarding an app, erasing a user, retention.

Every function here takes a ``cursor`` (a JSON-able dict the caller persists)
and a ``progress(cursor)`` callback that must persist it before returning.
The cursor is the whole state of the work: a job killed at any instant and
called again with the last persisted cursor finishes the work and reports
exact counts.

Exactness across a kill rests on a journal: before a batch is unlinked its
ids (and the history rows they carry) are persisted as ``pending``; after the
UNLINK the counts are persisted and ``pending`` cleared. A resumed job that
finds ``pending`` unlinks what is left of it and counts the whole batch: the
ones already gone were removed by the killed attempt (the app is frozen, and
nobody else deletes these keys while the job holds them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

from memadmin.memory import capabilities as cap
from memadmin.memory import index, index_queries, store
from memadmin.memory.consistency import health_forget, health_stale, index_health
from memadmin.memory.errors import ValidationError
from memadmin.memory.filters import EVERYTHING, Eq, Node, pinned_value, render
from memadmin.memory.history import (
    history_count,
    history_delete,
    history_drop,
    history_rows,
    messages_before_delete,
    messages_count,
    messages_delete,
)
from memadmin.memory.purge import erasure_mark
from memadmin.memory.scope import AppRef, Scope
from memadmin.memory.selectors import app_count, plan
from memadmin.memory.store import Place

logger = logging.getLogger("memadmin.memory.bulk")

Progress = Callable[[dict], None]
MAX_PASSES = 5  # full SCAN passes before an app that keeps refilling (an agent still writing) is given up on


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _unlink(ids: list[str], place: Place) -> int:
    client = store.client(on=place.store)
    prefix = store.key_prefix(place.collection)
    with store.store_errors():
        pipe = client.pipeline(transaction=False)
        for start in range(0, len(ids), 500):
            pipe.unlink(*(prefix + i for i in ids[start : start + 500]))
        unlinked = sum(pipe.execute())
    if unlinked:
        erasure_mark(on=place.store)  # the AOF still holds their text until it is rewritten
    return unlinked


def _finish_pending(cursor: dict, place: Place, counts: dict, progress: Progress, with_history: bool = True) -> None:
    """A batch journaled by a killed attempt: remove what survives, count the whole batch once."""
    pending = cursor.pop("pending", None)
    if not pending:
        return
    _unlink(pending["ids"], place)
    if with_history:
        history_delete(place, pending["ids"])
    counts["memories"] += len(pending["ids"])
    counts["history_rows"] += pending.get("history", 0)
    cursor["done"] = cursor.get("done", 0) + len(pending["ids"])
    progress(cursor)


def _delete_batch(
    cursor: dict,
    place: Place,
    ids: list[str],
    counts: dict,
    progress: Progress,
    with_history: bool = True,
    journal: bool = True,
) -> int:
    # The journal's history count only serves a resumed job; a request that dies simply never answers.
    history = history_count(place.collection, ids) if with_history and journal else 0
    cursor["pending"] = {"ids": ids, "history": history}
    progress(cursor)  # journal first: a kill after the UNLINK must still count this batch
    unlinked = _unlink(ids, place)
    deleted_history = history_delete(place, ids) if with_history else 0
    cursor.pop("pending")
    counts["memories"] += unlinked
    counts["history_rows"] += deleted_history
    cursor["done"] = cursor.get("done", 0) + unlinked
    progress(cursor)
    return unlinked


def _scan_page(place: Place, scan_cursor: int, batch_size: int) -> tuple[int, list[str]]:
    with store.store_errors():
        next_cursor, keys = store.client(on=place.store).scan(
            cursor=scan_cursor, match=f"{store.key_prefix(place.collection)}*", count=batch_size
        )
    return int(next_cursor), [index.memory_id_of(place.collection, k) for k in keys]


def _scan_count(place: Place) -> int:
    total, cursor = 0, 0
    while True:
        cursor, keys = _scan_page(place, cursor, 1000)
        total += len(keys)
        if cursor == 0:
            return total


# --- selectors for the offboard page -------------------------------------------------


def app_summary(*, scope: Scope, app_id: str) -> dict:
    """What offboarding would remove: counted by the engine and the history DB, never read row by row."""
    scope.require(cap.READ)
    app = scope.app_named(app_id)
    memories = app_count(app=app, tree=EVERYTHING)

    def distinct(name):  # only memories that have the field: a missing run_id is not a run
        return index_queries.distinct(app.place, f"@{name}:{{w'*'}}", name) if memories else 0

    return {
        "app_id": app.app_id,
        "collection": app.collection,
        "memories": memories,
        "users": distinct("user_id"),
        "agents": distinct("agent_id"),
        "runs": distinct("run_id"),
        "history_rows": history_rows(app.collection),
        "messages": messages_count(app.collection),
    }


def idle_runs(*, scope: Scope, app_id: str, before: int, limit: int = 500) -> list[str]:
    """run_ids of an app whose newest memory (created or updated) is older than ``before`` (epoch s)."""
    scope.require(cap.READ)
    app = scope.app_named(app_id)
    latest = index_queries.group_latest(app.place, "@run_id:{w'*'}", "run_id")
    runs = [run_id for run_id, last in latest.items() if last < before]
    return sorted(runs)[:limit]


# --- offboarding -------------------------------------------------------------------


_placeholder_prefix = store.offboarding_prefix


def swap_to_placeholder(place: Place) -> None:
    """Deleting a document from an HNSW index costs far more than the UNLINK itself, so the app's index is
    swapped for an empty one of the same name (on a prefix no key has) before the keys go. Readers of the
    frozen app keep getting answers (0 memories) instead of "Unknown index name"."""
    details = index.info(place)
    if details is not None:
        if index.prefixes(details) == [_placeholder_prefix(place.collection)]:
            return
        index.drop(place)
    index.create(place, algorithm="flat", prefix=_placeholder_prefix(place.collection))
    index.forget(place)
    health_stale(place=place)  # an erasure meanwhile must see the stand-in, not cached figures


def _reindex_and_count(app: AppRef) -> int:
    """Verification by the search engine: a fresh index over the app's real prefix re-reads every key
    there; its count must be 0."""
    place = app.place
    index.drop(place)
    index.forget(place)
    index.create(place, algorithm="flat")
    index.wait_indexed(place)
    return app_count(app=app, tree=EVERYTHING)


def app_drop(*, scope: Scope, app_id: str, cursor: dict, progress: Progress, batch_size: int = 1000) -> dict:
    """Delete everything an app stored: its hashes (SCAN + pipelined UNLINK), its Mem0 history and
    messages, its index; verify 0 remain by FT.SEARCH count and by SCAN. Returns the finished cursor,
    whose ``counts`` is the receipt's line for the app."""
    scope.require(cap.DELETE)
    if not 1 <= batch_size <= 10_000:
        raise ValidationError("batch_size must be between 1 and 10000.", field="batch_size")
    app = scope.app_named(app_id)
    place = app.place
    counts = cursor.setdefault("counts", {"memories": 0, "history_rows": 0, "messages": 0, "remaining": None})
    cursor.setdefault("phase", "swap")
    cursor.setdefault("scan", 0)
    cursor.setdefault("pass", 1)

    while cursor["phase"] != "done":
        phase = cursor["phase"]
        if phase == "swap":
            swap_to_placeholder(place)
            cursor["phase"] = "keys"
            progress(cursor)
        elif phase == "keys":
            _finish_pending(cursor, place, counts, progress, with_history=False)
            next_cursor, ids = _scan_page(place, cursor["scan"], batch_size)
            cursor["scan"] = next_cursor
            if ids:
                # History goes with the whole file below; counting it per batch would read it twice.
                _delete_batch(cursor, place, ids, counts, progress, with_history=False)
            if next_cursor == 0:
                cursor["phase"] = "history"
                progress(cursor)
        elif phase == "history":
            # Counted and journaled before the file goes, so a kill after the unlink keeps the counts.
            if "history_pending" not in cursor:
                cursor["history_pending"] = {
                    "history_rows": history_rows(place.collection),
                    "messages": messages_count(place.collection),
                }
                progress(cursor)
            index.forget(place)  # closes this process's Mem0 handle on the file
            history_drop(place.collection)
            pending = cursor.pop("history_pending")
            counts["history_rows"] += pending["history_rows"]
            counts["messages"] += pending["messages"]
            cursor["phase"] = "verify"
            progress(cursor)
        elif phase == "verify":
            indexed = _reindex_and_count(app)
            scanned = _scan_count(place)
            if indexed or scanned:
                if cursor["pass"] >= MAX_PASSES:
                    counts["remaining"] = max(indexed, scanned)
                    cursor["phase"] = "done"
                    progress(cursor)
                    break
                # Something was written after our SCAN passed it (an agent using Mem0 directly): go again.
                logger.warning(
                    "Offboarding %s: %s keys appeared during pass %s", app.collection, scanned, cursor["pass"]
                )
                cursor.update(phase="swap", scan=0, **{"pass": cursor["pass"] + 1})
            else:
                cursor["phase"] = "index"
            progress(cursor)
        elif phase == "index":
            index.drop(place)
            index.forget(place)
            health_forget(place=place)
            counts["remaining"] = _scan_count(place)
            cursor["verified_at"] = _now()
            cursor["phase"] = "done"
            progress(cursor)
    return cursor


# --- the deletion engine: erasure, run and agent deletions, retention -------------------

LINE = {
    "memories": 0,
    "history_rows": 0,
    "messages": 0,
    "unindexed": 0,
    "remaining": None,
    "phase": "indexed",
    "sessions": [],
}
SCOPE_FIELDS = ("user_id", "agent_id", "run_id")


def _session(fields: dict) -> tuple:
    return tuple(index.decode(fields[f.encode()]) if f.encode() in fields else None for f in SCOPE_FIELDS)


def _record(values: list) -> dict:
    """A hash's scope fields and timestamps, as filters.Node.matches() reads them."""
    record = {name: index.decode(v) if v is not None else None for name, v in zip(SCOPE_FIELDS, values)}
    for name, value in zip(("created_at", "updated_at"), values[3:]):
        record[name] = int(float(index.decode(value))) if value is not None else None
    return record


def _scan_matching(place: Place, tree: Node, scan_cursor: int, batch_size: int) -> tuple[int, list[str], list]:
    """One SCAN page of ONE collection's prefix, filtered in Python: (next cursor, matching ids, sessions).

    The fallback when the index cannot vouch for itself, always in a background job: SCAN walks the
    whole keyspace to find the prefix, which no per-person request may do."""
    collection = place.collection
    client = store.client(on=place.store)
    with store.store_errors():
        next_cursor, keys = client.scan(cursor=scan_cursor, match=f"{store.key_prefix(collection)}*", count=batch_size)
        keys = [k for k in keys if not index.decode(k).startswith(store.offboarding_prefix(collection))]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, *SCOPE_FIELDS, "created_at", "updated_at")
        rows = pipe.execute()
    ids, sessions = [], []
    for key, values in zip(keys, rows):
        record = _record(values)
        if tree.matches(record):
            ids.append(index.memory_id_of(collection, key))
            sessions.append([record[f] for f in SCOPE_FIELDS])
    return int(next_cursor), ids, sessions


def _indexed_page(place: Place, query: str, batch_size: int) -> tuple[list[str], set]:
    _, documents = index_queries.search(place, query, limit=batch_size, fields=SCOPE_FIELDS)
    ids = [index.memory_id_of(place.collection, key) for key, _ in documents]
    return ids, {_session(fields) for _, fields in documents}


def _add_sessions(line: dict, sessions) -> None:
    merged = {tuple(s) for s in line["sessions"]} | {tuple(s) for s in sessions}
    line["sessions"] = sorted(merged, key=lambda s: tuple(x or "" for x in s))


def matching_drop(
    *,
    scope: Scope,
    filters: Node,
    cursor: dict,
    progress: Progress,
    batch_size: int = 1000,
    messages_before: int | None = None,
    scan_fallback: bool = True,
    allow_whole_app: bool = False,
    journal: bool = True,
) -> dict:
    """THE deletion engine: every memory the filters match in the scope, app by app, with its history rows
    and the chat messages of the deleted sessions (or, for retention, messages older than
    ``messages_before``). Resumable and journaled: ``cursor`` is the whole state.

    Per app: delete what the index finds (batches of FT.SEARCH + pipelined UNLINK, O(matches)), then
    verify: the scoped count is 0 and the index is healthy (consistency.index_health). An unhealthy index
    cannot vouch that it saw every hash; with ``scan_fallback`` the app's prefix is then SCANned for
    matches the index missed and the count is repeated by SCAN. Without it (a request in progress) the
    line stops at phase "unverified" and the caller hands the rest to a job.
    ``cursor["apps"][app_id]`` ends as that app's receipt line."""
    scope.require(cap.DELETE)
    tree = scope.narrowed(filters)
    if tree == EVERYTHING and not allow_whole_app:
        raise ValidationError("A deletion needs at least one filter; offboard the app to delete all of it.")
    if not 1 <= batch_size <= 10_000:
        raise ValidationError("batch_size must be between 1 and 10000.", field="batch_size")
    pinned_user = pinned_value(tree, "user_id")
    apps = cursor.setdefault("apps", {})
    for app, app_tree in plan(scope, filters):
        line = apps.setdefault(app.app_id, {**LINE, "sessions": []})
        place, query = app.place, render(app_tree)
        while line["phase"] not in ("done", "unverified"):
            phase = line["phase"]
            cursor["current"] = app.app_id
            if phase == "indexed":
                _finish_pending(cursor, place, line, progress)
                ids, sessions = _indexed_page(place, query, batch_size)
                _add_sessions(line, sessions)
                # An index listing keys that are gone would make this loop spin: move on.
                if not ids or _delete_batch(cursor, place, ids, line, progress, journal=journal) == 0:
                    line["phase"] = "messages"
                    progress(cursor)
            elif phase == "messages":
                if messages_before is not None:
                    line["messages"] += messages_before_delete(place, messages_before)
                else:
                    # All of a user's sessions go only when all of the user's memories do; a narrower
                    # filter (an agent, a run) removes just the sessions of the memories it deleted.
                    users = {pinned_user} if pinned_user and app_tree == Eq("user_id", pinned_user) else set()
                    if app_tree == EVERYTHING:
                        users |= {s[0] for s in line["sessions"] if s[0]}
                    line["messages"] += messages_delete(
                        place, triples={tuple(s) for s in line["sessions"]}, user_ids=users
                    )
                line["phase"] = "verify"
                progress(cursor)
            elif phase == "verify":
                health = index_health(place=place)
                line["index"] = {
                    "healthy": health.healthy,
                    "reasons": health.reasons,
                    "num_docs": health.num_docs,
                    "checked_at": health.checked_at,
                    "info_at": health.info_at,
                }
                if health.healthy:
                    line["remaining"] = app_count(app=app, tree=app_tree)
                    line["verification"] = "index"
                    line["phase"] = "done"
                elif scan_fallback:
                    line["scan"] = 0
                    line["phase"] = "scan"
                else:
                    line["phase"] = "unverified"
                progress(cursor)
            elif phase == "scan":
                _finish_pending(cursor, place, line, progress)
                next_cursor, ids, sessions = _scan_matching(place, app_tree, line["scan"], batch_size)
                if ids:
                    _add_sessions(line, sessions)
                    line["unindexed"] += len(ids)
                    _delete_batch(cursor, place, ids, line, progress)
                line["scan"] = next_cursor
                if next_cursor == 0:
                    line["phase"] = "scan_messages"
                progress(cursor)
            elif phase == "scan_messages":
                if messages_before is None:  # sessions of memories only the SCAN found
                    line["messages"] += messages_delete(
                        place, triples={tuple(s) for s in line["sessions"]}, user_ids=set()
                    )
                line["phase"] = "scan_verify"
                progress(cursor)
            elif phase == "scan_verify":
                left, scan_cursor = 0, 0
                while True:
                    scan_cursor, ids, _ = _scan_matching(place, app_tree, scan_cursor, 1000)
                    left += len(ids)
                    if scan_cursor == 0:
                        break
                line["remaining"] = max(app_count(app=app, tree=app_tree), left)
                line["verification"] = "scan"
                line.pop("scan", None)
                line["phase"] = "done"
                progress(cursor)
        if line["phase"] == "done" and "verified_at" not in line:
            line["verified_at"] = _now()
            # Whose memories went (the audit row names them: each person's "who looked" list); the receipt
            # keeps how many sessions, not which, and never these ids (receipts.LINE_FIELDS).
            line["user_ids"] = sorted({s[0] for s in line["sessions"] if s[0]})
            line["sessions"] = len(line["sessions"])
            progress(cursor)
    cursor.pop("current", None)
    return cursor
