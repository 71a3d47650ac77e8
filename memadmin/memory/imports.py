"""Importing memories into one app: rows from the Mem0 Platform (get_all, get_memory_export) or from a
memadmin export, validated like API writes, written in Mem0 OSS's hash layout with fresh embeddings.

Two steps per batch, so a job can journal between them and count exactly once after a crash:
``memory_import_plan`` decides which rows are new (skipping ids already stored and a text the same user
already has, by Mem0's hash), ``memory_import_write`` embeds and writes them (a hash created only where none
is, and INSERT OR IGNORE of the same history rows: writing a batch twice changes nothing).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from memadmin.memory import capabilities as cap
from memadmin.memory import guarded, index, index_queries, store
from memadmin.memory.audit import audit_record
from memadmin.memory.errors import Conflict, NotFound, ValidationError
from memadmin.memory.history import history_import
from memadmin.memory.ids import clean_id
from memadmin.memory.scope import AppRef, Scope
from memadmin.memory.services import MAX_MESSAGE_CHARS, check_metadata_size, clean_metadata

MAX_HISTORY_ROWS = 1000
HISTORY_EVENTS = ("ADD", "UPDATE", "DELETE", "NONE")
_SHORT_TEXT = 64  # a history row's timestamps, kept as the text Mem0 wrote


@dataclass
class ImportRow:
    id: str
    memory: str
    user_id: str
    agent_id: str | None = None
    run_id: str | None = None
    metadata: dict = field(default_factory=dict)
    created_at: int | None = None
    updated_at: int | None = None
    hash: str = ""
    history: list[dict] = field(default_factory=list)


@dataclass
class ImportPlan:
    new: list[ImportRow]
    duplicate_ids: list[str]
    duplicate_hashes: list[str]


# --- one row ------------------------------------------------------------------------


def _optional_id(value, name: str) -> str | None:
    return None if value in (None, "") else clean_id(value, name)


def _epoch(value, name: str) -> int | None:
    """An ISO 8601 date (the platform's and memadmin's exports) or unix seconds (Mem0 OSS's hashes)."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be an ISO 8601 date or unix seconds.", field=name)
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not -62_135_596_800 <= value <= 253_402_300_799:
            raise ValidationError(f"{name} is outside the years 1-9999.", field=name)
        return int(value)
    if not isinstance(value, str) or len(value) > _SHORT_TEXT:
        raise ValidationError(f"{name} must be an ISO 8601 date or unix seconds.", field=name)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{name} is not an ISO 8601 date: {value[:40]!r}.", field=name) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _short_text(value, name: str, limit: int = _SHORT_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValidationError(f"{name} must be text of at most {limit} characters.", field=name)
    return value


def _history_row(entry, memory_id: str, n: int) -> dict:
    where = f"history[{n}]"
    if not isinstance(entry, dict):
        raise ValidationError(f"{where} must be an object.", field="history")
    if entry.get("memory_id") not in (None, memory_id):
        raise ValidationError(f"{where} belongs to another memory ({str(entry['memory_id'])[:40]!r}).", field="history")
    event = entry.get("event")
    if event not in HISTORY_EVENTS:
        raise ValidationError(f"{where}.event must be one of {', '.join(HISTORY_EVENTS)}.", field="history")
    row = {
        "id": clean_id(entry.get("id"), f"{where}.id"),
        "memory_id": memory_id,
        "event": event,
        "is_deleted": 1 if entry.get("is_deleted") else 0,
    }
    for name in ("old_memory", "new_memory"):
        row[name] = _short_text(entry.get(name), f"{where}.{name}", MAX_MESSAGE_CHARS)
    for name in ("created_at", "updated_at"):
        row[name] = _short_text(entry.get(name), f"{where}.{name}")
    for name in ("actor_id", "role"):
        row[name] = _short_text(entry.get(name), f"{where}.{name}", 128)
    return row


def import_row(data) -> ImportRow:
    """One memory from an import file, checked like an API write (ids, text, metadata without identity keys),
    or ValidationError naming the field. Platform-only fields (``categories``) go into metadata if it has none
    of its own; ``app_id`` is not taken from the row: the import's app is the one its admin chose."""
    if not isinstance(data, dict):
        raise ValidationError("each memory must be a JSON object.")
    memory_id = clean_id(data.get("id", data.get("memory_id")), "id")
    text = data.get("memory", data.get("data"))
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("memory must be non-empty text.", field="memory")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ValidationError(f"memory is over {MAX_MESSAGE_CHARS} characters.", field="memory")
    if data.get("user_id") in (None, ""):
        raise ValidationError("user_id is required: every memory belongs to one end user.", field="user_id")
    metadata = clean_metadata(data.get("metadata")) or {}
    categories = data.get("categories")
    if categories and "categories" not in metadata:
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise ValidationError("categories must be a list of text.", field="categories")
        metadata = {**metadata, "categories": categories}
    check_metadata_size(metadata)  # again: the categories may have made it larger
    history = data.get("history") or []
    if not isinstance(history, list) or len(history) > MAX_HISTORY_ROWS:
        raise ValidationError(f"history must be a list of at most {MAX_HISTORY_ROWS} rows.", field="history")
    given_hash = data.get("hash")
    return ImportRow(
        id=memory_id,
        memory=text,
        user_id=clean_id(data.get("user_id"), "user_id"),
        agent_id=_optional_id(data.get("agent_id"), "agent_id"),
        run_id=_optional_id(data.get("run_id"), "run_id"),
        metadata=metadata,
        created_at=_epoch(data.get("created_at"), "created_at"),
        updated_at=_epoch(data.get("updated_at"), "updated_at"),
        # Mem0's hash is the MD5 of the text; a row without one gets that.
        hash=clean_id(given_hash, "hash") if given_hash else hashlib.md5(text.encode()).hexdigest(),
        history=[_history_row(entry, memory_id, n) for n, entry in enumerate(history)],
    )


# --- batches -------------------------------------------------------------------------


def _import_app(scope: Scope, app_id: str) -> AppRef:
    scope.require(cap.WRITE)
    app = scope.app_named(app_id)
    if not app.writable:
        raise Conflict(f"App {app.app_id} is frozen for offboarding and accepts no imports.", status="frozen")
    return app


def memory_import_plan(*, scope: Scope, app_id: str, rows: list[ImportRow]) -> ImportPlan:
    """Which rows are new: an id already in the app (or earlier in this batch) is a duplicate, and so is
    a text (Mem0's hash) its user already has there."""
    app = _import_app(scope, app_id)
    if scope.user_id is not None and any(row.user_id != scope.user_id for row in rows):
        raise NotFound()
    prefix = store.key_prefix(app.collection)
    with store.store_errors():
        pipe = store.client(on=app.store).pipeline(transaction=False)
        for row in rows:
            pipe.exists(f"{prefix}{row.id}")
        stored = pipe.execute()
    held = index_queries.hashes_held(app.place, [(row.user_id, row.hash) for row in rows])
    plan = ImportPlan(new=[], duplicate_ids=[], duplicate_hashes=[])
    seen_ids: set[str] = set()
    for row, exists in zip(rows, stored):
        if exists or row.id in seen_ids:
            plan.duplicate_ids.append(row.id)
        elif (row.user_id, row.hash) in held:
            plan.duplicate_hashes.append(row.id)
        else:
            plan.new.append(row)
            held.add((row.user_id, row.hash))
        seen_ids.add(row.id)
    return plan


def _fields(row: ImportRow, vector) -> dict:
    """Mem0 OSS's valkey hash (mem0/vector_stores/valkey.py insert), so its agents read imports as their own."""
    fields = {
        "memory_id": row.id,
        "hash": row.hash,
        "memory": row.memory,
        "created_at": row.created_at if row.created_at is not None else int(datetime.now(UTC).timestamp()),
        "user_id": row.user_id,
        "metadata": json.dumps(row.metadata),
        "embedding": np.asarray(vector, dtype=np.float32).tobytes(),
    }
    for name in ("agent_id", "run_id", "updated_at"):
        if getattr(row, name) is not None:
            fields[name] = getattr(row, name)
    return fields


def memory_import_write(*, scope: Scope, app_id: str, rows: list[ImportRow]) -> dict:
    """Embed the rows in one batch and write them with their history; {"memories", "existing",
    "history_rows"}. Each hash is created only where none is (atomically, on the server): a row whose id
    was stored since the plan is counted in ``existing`` and the memory there is left as it is, so an
    import never overwrites a memory, nor rewrites one that a deletion is removing."""
    app = _import_app(scope, app_id)
    if not rows:
        return {"memories": 0, "existing": 0, "history_rows": 0}
    vectors = index.embed_many(app.place, [row.memory for row in rows])
    prefix = store.key_prefix(app.collection)
    with store.store_errors():
        pipe = store.client(on=app.store).pipeline(transaction=False)
        for row, vector in zip(rows, vectors):
            guarded.hset_new(pipe, f"{prefix}{row.id}", _fields(row, vector))
        replies = pipe.execute()
    # The event names only the memories this batch wrote (a row stored meanwhile was not imported): the app
    # page's chart and the audit trail count writes from it.
    written = [row.id for row, reply in zip(rows, replies) if int(reply)]
    history_rows = history_import(app.collection, [entry for row in rows for entry in row.history])
    audit_record(
        scope=scope,
        action="memory.import",
        app_id=app.app_id,
        memory_ids=written,
        details={"history_rows": history_rows},
    )
    return {"memories": len(written), "existing": len(rows) - len(written), "history_rows": history_rows}
