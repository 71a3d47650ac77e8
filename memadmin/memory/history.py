"""Mem0's SQLite history DB of each collection: change rows per memory and raw chat messages.

Read and erased with our own connections so erasure never waits on Mem0's
objects; a collection that never had a history file has nothing to erase.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

from memadmin.memory.store import history_db_path

_CHUNK = 500


_lookup_indexed: set[str] = set()


def _connect(collection: str) -> sqlite3.Connection | None:
    path = history_db_path(collection)
    if not path.exists():
        return None
    connection = sqlite3.connect(path, timeout=30)
    connection.row_factory = sqlite3.Row
    if str(path) not in _lookup_indexed and _index_memory_id(connection):
        _lookup_indexed.add(str(path))
    return connection


def _index_memory_id(connection) -> bool:
    """Mem0's history table has no index on memory_id: erasing one user's rows read the whole table
    (O(app), 100+ ms at 1M rows). An index Mem0 never sees makes it O(rows deleted)."""
    if not _has_table(connection, "history"):
        return False
    with connection:
        connection.execute("CREATE INDEX IF NOT EXISTS memadmin_history_memory_id ON history(memory_id)")
    return True


def _has_table(connection, name: str) -> bool:
    row = connection.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
    return row is not None


def _chunks(items: list, size: int = _CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def history_for(collection: str, memory_ids: list[str]) -> dict[str, list[dict]]:
    """History rows per memory id, oldest first."""
    result: dict[str, list[dict]] = {memory_id: [] for memory_id in memory_ids}
    connection = _connect(collection)
    if connection is None:
        return result
    with closing(connection):
        if not _has_table(connection, "history"):
            return result
        for chunk in _chunks(memory_ids):
            marks = ",".join("?" * len(chunk))
            rows = connection.execute(
                f"SELECT id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, "
                f"actor_id, role FROM history WHERE memory_id IN ({marks}) ORDER BY updated_at, created_at",
                chunk,
            )
            for row in rows:
                entry = dict(row)
                entry["is_deleted"] = bool(entry["is_deleted"])
                result[entry["memory_id"]].append(entry)
    return result


def history_count(collection: str, memory_ids: list[str]) -> int:
    return sum(len(rows) for rows in history_for(collection, memory_ids).values())


def history_delete(collection: str, memory_ids: list[str]) -> int:
    connection = _connect(collection)
    if connection is None or not memory_ids:
        return 0
    deleted = 0
    with closing(connection):
        if not _has_table(connection, "history"):
            return 0
        with connection:
            for chunk in _chunks(memory_ids):
                marks = ",".join("?" * len(chunk))
                deleted += connection.execute(f"DELETE FROM history WHERE memory_id IN ({marks})", chunk).rowcount
    return deleted


def _scope_parts(session_scope: str) -> dict[str, str]:
    parts = {}
    for part in session_scope.split("&"):
        key, _, value = part.partition("=")
        parts[key] = value.replace("%3D", "=").replace("%26", "&").replace("%25", "%")
    return parts


def messages_delete(collection: str, *, triples: set[tuple], user_ids: set[str] = frozenset()) -> int:
    """Delete stored chat messages of the given (user, agent, run) sessions and of whole users."""
    connection = _connect(collection)
    if connection is None or not (triples or user_ids):
        return 0
    with closing(connection):
        if not _has_table(connection, "messages"):
            return 0
        doomed = []
        for (session_scope,) in connection.execute("SELECT DISTINCT session_scope FROM messages"):
            parts = _scope_parts(session_scope or "")
            triple = (parts.get("user_id"), parts.get("agent_id"), parts.get("run_id"))
            if triple in triples or parts.get("user_id") in user_ids:
                doomed.append(session_scope)
        deleted = 0
        with connection:
            for chunk in _chunks(doomed):
                marks = ",".join("?" * len(chunk))
                deleted += connection.execute(f"DELETE FROM messages WHERE session_scope IN ({marks})", chunk).rowcount
        return deleted


def _row_count(collection: str, table: str) -> int:
    connection = _connect(collection)
    if connection is None:
        return 0
    with closing(connection):
        if not _has_table(connection, table):
            return 0
        return connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # two fixed names, never input


def messages_count(collection: str) -> int:
    return _row_count(collection, "messages")


def history_drop(collection: str) -> None:
    """Remove a collection's whole history file (offboarding)."""
    path = history_db_path(collection)
    _lookup_indexed.discard(str(path))
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def history_rows(collection: str) -> int:
    return _row_count(collection, "history")


def messages_before_delete(collection: str, before: int) -> int:
    """Retention: stored chat messages older than ``before`` (epoch s)."""
    connection = _connect(collection)
    if connection is None:
        return 0
    with closing(connection):
        if not _has_table(connection, "messages"):
            return 0
        with connection:
            return connection.execute(
                "DELETE FROM messages WHERE julianday(created_at) < julianday(?, 'unixepoch')", (int(before),)
            ).rowcount
