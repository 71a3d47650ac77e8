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

from django.conf import settings

from memadmin.memory import store
from memadmin.memory.errors import ValidationError
from memadmin.memory.filters import EVERYTHING, Node, pinned_value, render
from memadmin.memory.history import (
    _connect,
    _has_table,
    history_count,
    history_delete,
    history_drop,
    messages_count,
    messages_delete,
)
from memadmin.memory.scope import AppRef, Scope
from memadmin.memory.selectors import _count, _search, plan
from memadmin.memory.services import scan_matching

logger = logging.getLogger("memadmin.memory.bulk")

Progress = Callable[[dict], None]
MAX_PASSES = 5  # full SCAN passes before an app that keeps refilling (an agent still writing) is given up on


def _app(scope: Scope, app_id: str) -> AppRef:
    app = scope.app(app_id)
    if app is None:
        from memadmin.memory.errors import NotFound

        raise NotFound(f"App {app_id} not found.")
    return app


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _unlink(ids: list[str], collection: str) -> int:
    client = store.client()
    prefix = store.key_prefix(collection)
    with store.store_errors():
        pipe = client.pipeline(transaction=False)
        for start in range(0, len(ids), 500):
            pipe.unlink(*(prefix + i for i in ids[start : start + 500]))
        return sum(pipe.execute())


def _finish_pending(cursor: dict, collection: str, counts: dict, progress: Progress,
                    with_history: bool = True) -> None:  # fmt: skip
    """A batch journaled by a killed attempt: remove what survives, count the whole batch once."""
    pending = cursor.pop("pending", None)
    if not pending:
        return
    _unlink(pending["ids"], collection)
    if with_history:
        history_delete(collection, pending["ids"])
    counts["memories"] += len(pending["ids"])
    counts["history_rows"] += pending.get("history", 0)
    cursor["done"] = cursor.get("done", 0) + len(pending["ids"])
    progress(cursor)


def _delete_batch(cursor: dict, collection: str, ids: list[str], counts: dict, progress: Progress,
                  with_history: bool = True) -> int:  # fmt: skip
    history = history_count(collection, ids) if with_history else 0
    cursor["pending"] = {"ids": ids, "history": history}
    progress(cursor)  # journal first: a kill after the UNLINK must still count this batch
    unlinked = _unlink(ids, collection)
    deleted_history = history_delete(collection, ids) if with_history else 0
    cursor.pop("pending")
    counts["memories"] += unlinked
    counts["history_rows"] += deleted_history
    cursor["done"] = cursor.get("done", 0) + unlinked
    progress(cursor)
    return unlinked


def _scan_page(collection: str, scan_cursor: int, batch_size: int) -> tuple[int, list[str]]:
    with store.store_errors():
        next_cursor, keys = store.client().scan(
            cursor=scan_cursor, match=f"{store.key_prefix(collection)}*", count=batch_size
        )
    return int(next_cursor), [store._s(k).rsplit(":", 1)[-1] for k in keys]


def _scan_count(collection: str) -> int:
    total, cursor = 0, 0
    while True:
        cursor, keys = _scan_page(collection, cursor, 1000)
        total += len(keys)
        if cursor == 0:
            return total


def _history_rows(collection: str) -> int:
    connection = _connect(collection)
    if connection is None:
        return 0
    try:
        if not _has_table(connection, "history"):
            return 0
        return connection.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    finally:
        connection.close()


def _distinct(app: AppRef, field: str) -> int:
    store.ensure_index(app.collection)
    reply = store.ft(
        "FT.AGGREGATE", app.collection, f"@{field}:{{w'*'}}", "GROUPBY", "1", f"@{field}",
        "REDUCE", "COUNT", "0", "AS", "n", "LIMIT", "0", "1000000",
    )  # fmt: skip
    return max(0, len(reply) - 1)


# --- selectors for the offboard page -------------------------------------------------


def app_summary(*, scope: Scope, app_id: str) -> dict:
    """What offboarding would remove: counted by the engine and the history DB, never read row by row."""
    scope.require("read")
    app = _app(scope, app_id)
    memories = _count(app, EVERYTHING)
    return {
        "app_id": app.app_id,
        "collection": app.collection,
        "memories": memories,
        "users": _distinct(app, "user_id") if memories else 0,
        "agents": _distinct(app, "agent_id") if memories else 0,
        "runs": _distinct(app, "run_id") if memories else 0,
        "history_rows": _history_rows(app.collection),
        "messages": messages_count(app.collection),
    }


def idle_runs(*, scope: Scope, app_id: str, before: int, limit: int = 500) -> list[str]:
    """run_ids of an app whose newest memory (created or updated) is older than ``before`` (epoch s)."""
    scope.require("read")
    app = _app(scope, app_id)
    store.ensure_index(app.collection)
    reply = store.ft(
        "FT.AGGREGATE", app.collection, "@run_id:{w'*'}", "LOAD", "2", "@created_at", "@updated_at",
        "GROUPBY", "1", "@run_id", "REDUCE", "MAX", "1", "@created_at", "AS", "c",
        "REDUCE", "MAX", "1", "@updated_at", "AS", "u", "LIMIT", "0", "1000000",
    )  # fmt: skip
    runs = []
    for row in reply[1:]:
        fields = {store._s(k): store._s(v) for k, v in zip(row[::2], row[1::2])}
        last = max(_number(fields.get("c")), _number(fields.get("u")))
        if fields.get("run_id") and last < before:
            runs.append(fields["run_id"])
    return sorted(runs)[:limit]


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


# --- offboarding -------------------------------------------------------------------


_placeholder_prefix = store.offboarding_prefix


def _drop_index(collection: str) -> None:
    with store.store_errors():
        try:
            store.client().execute_command("FT.DROPINDEX", collection)
        except Exception as exc:  # already dropped by a killed attempt
            if "unknown index" not in str(exc).lower() and "no such index" not in str(exc).lower():
                raise


def _swap_to_placeholder(collection: str) -> None:
    """Deleting a document from an HNSW index costs far more than the UNLINK itself, so the app's index is
    swapped for an empty one of the same name (on a prefix no key has) before the keys go. Readers of the
    frozen app keep getting answers (0 memories) instead of "Unknown index name"."""
    with store.store_errors():
        info = store.index_info(collection)
        if info is not None:
            if store._prefixes(info) == [_placeholder_prefix(collection)]:
                return
            _drop_index(collection)
        schema = store._schema(collection, settings.MEMADMIN_EMBEDDER_DIMS, "flat")
        schema[schema.index(store.key_prefix(collection))] = _placeholder_prefix(collection)
        store.client().execute_command(*schema)
    store.forget_index(collection)


def _reindex_and_count(app: AppRef) -> int:
    """Verification by the search engine: a fresh index over the app's real prefix re-reads every key
    there; its count must be 0."""
    collection = app.collection
    _drop_index(collection)
    store.forget_index(collection)
    with store.store_errors():
        store.client().execute_command(*store._schema(collection, settings.MEMADMIN_EMBEDDER_DIMS, "flat"))
        store._wait_indexed(collection)
    return _count(app, EVERYTHING)


def app_drop(*, scope: Scope, app_id: str, cursor: dict, progress: Progress, batch_size: int = 1000) -> dict:
    """Delete everything an app stored: its hashes (SCAN + pipelined UNLINK), its Mem0 history and
    messages, its index; verify 0 remain by FT.SEARCH count and by SCAN. Returns the finished cursor,
    whose ``counts`` is the receipt's line for the app."""
    scope.require("delete")
    if not 1 <= batch_size <= 10_000:
        raise ValidationError("batch_size must be between 1 and 10000.", field="batch_size")
    app = _app(scope, app_id)
    collection = app.collection
    counts = cursor.setdefault("counts", {"memories": 0, "history_rows": 0, "messages": 0, "remaining": None})
    cursor.setdefault("phase", "swap")
    cursor.setdefault("scan", 0)
    cursor.setdefault("pass", 1)

    while cursor["phase"] != "done":
        phase = cursor["phase"]
        if phase == "swap":
            _swap_to_placeholder(collection)
            cursor["phase"] = "keys"
            progress(cursor)
        elif phase == "keys":
            _finish_pending(cursor, collection, counts, progress, with_history=False)
            next_cursor, ids = _scan_page(collection, cursor["scan"], batch_size)
            cursor["scan"] = next_cursor
            if ids:
                # History goes with the whole file below; counting it per batch would read it twice.
                _delete_batch(cursor, collection, ids, counts, progress, with_history=False)
            if next_cursor == 0:
                cursor["phase"] = "history"
                progress(cursor)
        elif phase == "history":
            # Counted and journaled before the file goes, so a kill after the unlink keeps the counts.
            if "history_pending" not in cursor:
                cursor["history_pending"] = {"history_rows": _history_rows(collection),
                                             "messages": messages_count(collection)}  # fmt: skip
                progress(cursor)
            store.forget_index(collection)  # closes this process's Mem0 handle on the file
            history_drop(collection)
            pending = cursor.pop("history_pending")
            counts["history_rows"] += pending["history_rows"]
            counts["messages"] += pending["messages"]
            cursor["phase"] = "verify"
            progress(cursor)
        elif phase == "verify":
            indexed = _reindex_and_count(app)
            scanned = _scan_count(collection)
            if indexed or scanned:
                if cursor["pass"] >= MAX_PASSES:
                    counts["remaining"] = max(indexed, scanned)
                    cursor["phase"] = "done"
                    progress(cursor)
                    break
                # Something was written after our SCAN passed it (an agent using Mem0 directly): go again.
                logger.warning("Offboarding %s: %s keys appeared during pass %s", collection, scanned, cursor["pass"])
                cursor.update(phase="swap", scan=0, **{"pass": cursor["pass"] + 1})
            else:
                cursor["phase"] = "index"
            progress(cursor)
        elif phase == "index":
            _drop_index(collection)
            store.forget_index(collection)
            counts["remaining"] = _scan_count(collection)
            cursor["verified_at"] = _now()
            cursor["phase"] = "done"
            progress(cursor)
    return cursor


# --- erasure and retention -----------------------------------------------------------


def _messages_before(collection: str, before: int) -> int:
    connection = _connect(collection)
    if connection is None:
        return 0
    try:
        if not _has_table(connection, "messages"):
            return 0
        with connection:
            return connection.execute(
                "DELETE FROM messages WHERE julianday(created_at) < julianday(?, 'unixepoch')", (int(before),)
            ).rowcount
    finally:
        connection.close()


def matching_drop(
    *,
    scope: Scope,
    filters: Node,
    cursor: dict,
    progress: Progress,
    batch_size: int = 1000,
    messages_before: int | None = None,
) -> dict:
    """Delete every memory the filters match in the scope, app by app, resumably; with history rows and
    the chat messages of the deleted sessions (or, for retention, messages older than ``messages_before``).
    ``cursor["apps"][app_id]`` ends as that app's receipt line, remaining counted twice."""
    scope.require("delete")
    tree = scope.narrowed(filters)
    if tree == EVERYTHING:
        raise ValidationError("A deletion needs at least one filter; offboard the app to delete all of it.")
    if not 1 <= batch_size <= 10_000:
        raise ValidationError("batch_size must be between 1 and 10000.", field="batch_size")
    pinned_user = pinned_value(tree, "user_id")
    apps = cursor.setdefault("apps", {})
    for app, app_tree in plan(scope, filters):
        line = apps.setdefault(app.app_id, {"memories": 0, "history_rows": 0, "messages": 0, "unindexed": 0,
                                            "remaining": None, "phase": "indexed", "sessions": []})  # fmt: skip
        collection = app.collection
        while line["phase"] != "done":
            if line["phase"] == "indexed":
                cursor["current"] = app.app_id
                _finish_pending(cursor, collection, line, progress)
                response = _search(collection, render(app_tree), "LIMIT", "0", str(batch_size),
                                   "RETURN", "3", "user_id", "agent_id", "run_id")  # fmt: skip
                ids = [store._s(response[i]).rsplit(":", 1)[-1] for i in range(1, len(response), 2)]
                sessions = {tuple(s) for s in line["sessions"]}
                for i in range(2, len(response), 2):
                    fields = dict(zip(response[i][::2], response[i][1::2]))
                    sessions.add(tuple(store._s(fields[f]) if f in fields else None
                                       for f in (b"user_id", b"agent_id", b"run_id")))  # fmt: skip
                line["sessions"] = sorted(sessions, key=lambda s: tuple(x or "" for x in s))
                # An index listing keys that are gone would make this loop spin: move on to the SCAN.
                if not ids or _delete_batch(cursor, collection, ids, line, progress) == 0:
                    line["phase"] = "scan"
                    progress(cursor)
            elif line["phase"] == "scan":
                _, stragglers = scan_matching(app, app_tree, delete=True)
                line["history_rows"] += history_delete(collection, stragglers)
                line["memories"] += len(stragglers)
                line["unindexed"] += len(stragglers)
                cursor["done"] = cursor.get("done", 0) + len(stragglers)
                line["phase"] = "messages"
                progress(cursor)
            elif line["phase"] == "messages":
                if messages_before is not None:
                    line["messages"] += _messages_before(collection, messages_before)
                else:
                    triples = {tuple(s) for s in line["sessions"]}
                    users = {pinned_user} if pinned_user else set()
                    line["messages"] += messages_delete(collection, triples=triples, user_ids=users)
                line["phase"] = "verify"
                progress(cursor)
            elif line["phase"] == "verify":
                line["remaining"] = _count(app, app_tree) + scan_matching(app, app_tree, delete=False)[0]
                line["verified_at"] = _now()
                line["sessions"] = len(line["sessions"])  # the receipt keeps how many, not which
                line["phase"] = "done"
                progress(cursor)
    cursor.pop("current", None)
    return cursor
