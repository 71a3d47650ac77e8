"""Mem0's history files on disk, made to forget: secure_delete, one VACUUM, and the WAL checkpointed and truncated
(memadmin/memory/purge.py runs it for every file after erasures)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from django.conf import settings

SECURED_TABLE = "memadmin_secure_delete"  # in a history file: memadmin vacuumed it once with secure_delete on


def history_files() -> list[Path]:
    directory = Path(settings.DATA_DIR) / "history"
    return sorted(directory.glob("*.sqlite3")) if directory.is_dir() else []


def history_file_purge(path: Path) -> dict:
    """secure_delete on; VACUUM once if memadmin never did (rows deleted before secure_delete was on sit in free
    pages and free blocks; later deletions are zeroed where they happen); then the WAL checkpointed into the
    file and truncated to 0 bytes, so the old page images it held are gone."""
    result = {"file": path.name, "vacuumed": False}
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as connection:
        connection.execute("PRAGMA secure_delete=ON")
        secured = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (SECURED_TABLE,)
        ).fetchone()
        if not secured:
            started = time.monotonic()
            connection.execute(f"CREATE TABLE IF NOT EXISTS {SECURED_TABLE} (at TEXT)")
            connection.execute(f"INSERT INTO {SECURED_TABLE} VALUES (?)", (datetime.now(timezone.utc).isoformat(),))
            connection.execute("VACUUM")
            result.update(vacuumed=True, vacuum_seconds=round(time.monotonic() - started, 3))
        for _ in range(100):
            busy, _log, _done = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                result["checkpointed"] = True
                return result
            time.sleep(0.1)  # a reader in another process holds an old snapshot: wait for it to end
    result["checkpointed"] = False
    return result
