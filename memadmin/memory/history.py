"""Mem0's SQLite history DB of each collection: change rows per memory and raw chat messages.

Read and erased with our own connections so erasure never waits on Mem0's
objects; a collection that never had a history file has nothing to erase.
The file is the collection's, on this machine; what erases takes the app's
``Place`` too, to mark its store for the disk purge (purge.erasure_mark).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

from memadmin.memory.purge import erasure_mark
from memadmin.memory.store import Place, history_db_path

_CHUNK = 500


def _connect(collection: str) -> sqlite3.Connection | None:
    path = history_db_path(collection)
    if not path.exists():
        return None
    connection = sqlite3.connect(path, timeout=30)
    connection.row_factory = sqlite3.Row
    # A deleted row's text is overwritten where it lay, not left in a free page (purge.py checkpoints the WAL).
    connection.execute("PRAGMA secure_delete=ON")
    _index_lookups(connection)
    return connection


# The part of a session scope from its user_id on. Mem0 sorts the parts (agent_id, run_id, user_id) and
# escapes "=" in values, so the first "user_id=" is the key and the user's part is the scope's tail.
USER_PART_SQL = "substr(session_scope, instr(session_scope, 'user_id='))"


# index name -> (its table, what it indexes)
_LOOKUPS = {
    "memadmin_history_memory_id": ("history", "memory_id"),
    "memadmin_messages_scope": ("messages", "session_scope"),
    "memadmin_messages_user": ("messages", USER_PART_SQL),
}


def _index_lookups(connection) -> None:
    """Mem0's tables have no index for what an erasure looks up: erasing one user read the whole history
    table (O(app), 100+ ms at 1M rows) and every chat session of the app. Indexes Mem0 never sees make
    both O(rows deleted). Checked on every connection (one read of the schema table), not remembered per
    path: a file removed and made again under the same name (a restore, a re-created collection) has none."""
    names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    missing = [
        (name, table, column) for name, (table, column) in _LOOKUPS.items() if table in names and name not in names
    ]
    if missing:
        with connection:
            for name, table, column in missing:
                connection.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table}({column})")


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


def history_delete(place: Place, memory_ids: list[str]) -> int:
    connection = _connect(place.collection)
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
    if deleted:
        erasure_mark(on=place.store)  # their text is in the WAL until it is checkpointed
    return deleted


def _scope_value(value: str) -> str:
    # Mem0's _escape_scope_value: its session scopes are built this way.
    return str(value).replace("%", "%25").replace("&", "%26").replace("=", "%3D")


def session_scope(user_id: str | None, agent_id: str | None, run_id: str | None) -> str:
    """Mem0's _build_session_scope for one (user, agent, run): sorted parts, empty ones left out."""
    values = {"agent_id": agent_id, "run_id": run_id, "user_id": user_id}
    return "&".join(f"{key}={_scope_value(value)}" for key, value in values.items() if value)


def messages_delete(place: Place, *, triples: set[tuple], user_ids: set[str] = frozenset()) -> int:
    """Delete stored chat messages of the given (user, agent, run) sessions and of whole users, by index:
    never reading the other sessions of the app."""
    connection = _connect(place.collection)
    if connection is None or not (triples or user_ids):
        return 0
    exact = sorted({session_scope(*triple) for triple in triples} - {""})
    users = sorted(f"user_id={_scope_value(u)}" for u in user_ids if u)
    with closing(connection):
        if not _has_table(connection, "messages"):
            return 0
        deleted = 0
        with connection:
            for chunk in _chunks(exact):
                marks = ",".join("?" * len(chunk))
                deleted += connection.execute(f"DELETE FROM messages WHERE session_scope IN ({marks})", chunk).rowcount
            for chunk in _chunks(users):
                marks = ",".join("?" * len(chunk))
                query = f"DELETE FROM messages WHERE {USER_PART_SQL} IN ({marks})"
                deleted += connection.execute(query, chunk).rowcount
    if deleted:
        erasure_mark(on=place.store)
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
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def history_rows(collection: str) -> int:
    return _row_count(collection, "history")


def messages_before_delete(place: Place, before: int) -> int:
    """Retention: stored chat messages older than ``before`` (epoch s)."""
    connection = _connect(place.collection)
    if connection is None:
        return 0
    with closing(connection):
        if not _has_table(connection, "messages"):
            return 0
        with connection:
            deleted = connection.execute(
                "DELETE FROM messages WHERE julianday(created_at) < julianday(?, 'unixepoch')", (int(before),)
            ).rowcount
    if deleted:
        erasure_mark(on=place.store)
    return deleted


# Mem0's own history table (mem0/memory/storage.py), made here when an import reaches a collection first.
_HISTORY_TABLE = """CREATE TABLE IF NOT EXISTS history (
    id TEXT PRIMARY KEY, memory_id TEXT, old_memory TEXT, new_memory TEXT, event TEXT, created_at DATETIME,
    updated_at DATETIME, is_deleted INTEGER, actor_id TEXT, role TEXT)"""
HISTORY_COLUMNS = (
    "id",
    "memory_id",
    "old_memory",
    "new_memory",
    "event",
    "created_at",
    "updated_at",
    "is_deleted",
    "actor_id",
    "role",
)


def history_import(collection: str, rows: list[dict]) -> int:
    """Write history rows as they were exported (ids kept); a row whose id is there already is left alone,
    so a resumed import writes each row once. Returns the rows written."""
    if not rows:
        return 0
    connection = sqlite3.connect(history_db_path(collection), timeout=30)
    connection.execute("PRAGMA secure_delete=ON")
    with closing(connection):
        with connection:
            connection.execute(_HISTORY_TABLE)
        _index_lookups(connection)
        marks = ",".join("?" * len(HISTORY_COLUMNS))
        with connection:
            before = connection.total_changes
            connection.executemany(
                f"INSERT OR IGNORE INTO history ({', '.join(HISTORY_COLUMNS)}) VALUES ({marks})",
                [tuple(row.get(c) for c in HISTORY_COLUMNS) for row in rows],
            )
            return connection.total_changes - before
