"""Scoped writes (add, update, a person's edit), and the door to the scoped deletions (``deletions.py``: every
deletion is verified, scoped count 0 on a healthy index or a job's SCAN)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from uuid import UUID

from memadmin.memory import capabilities as cap
from memadmin.memory import embedders, guarded, index, store
from memadmin.memory.audit import audit_record
from memadmin.memory.deletions import (  # noqa: F401  (the service's interface: tenants reach deletions here)
    check_holds,
    memory_delete,
    memory_delete_batch,
    memory_delete_matching,
    render_for_audit,
)
from memadmin.memory.errors import Conflict, NotFound, ValidationError
from memadmin.memory.history import history_delete
from memadmin.memory.ids import clean_id
from memadmin.memory.records import MemoryRecord
from memadmin.memory.scope import AppRef, Scope
from memadmin.memory.selectors import memory_find
from memadmin.memory.store import Place
from memadmin.memory.validation import (  # noqa: F401  (part of the service's interface: imports, the API)
    IDENTITY_KEYS,
    MAX_MESSAGE_CHARS,
    MAX_METADATA_BYTES,
    RESERVED_METADATA,
    check_metadata_size,
    clean_messages,
    clean_metadata,
    clean_text,
    clean_whole_metadata,
)

logger = logging.getLogger("memadmin.memory")


# --- which apps take writes ---------------------------------------------------------


def _writable_app(scope: Scope, app_id: str) -> AppRef:
    app = scope.app_named(app_id)
    if not app.writable:
        raise Conflict(app.frozen_message(), status="frozen")
    return scope.require_writes(app)


# --- writes ---------------------------------------------------------------------


def memory_add(
    *,
    scope: Scope,
    app_id: str,
    messages,
    user_id: str,
    agent_id: str | None = None,
    run_id: str | None = None,
    metadata: dict | None = None,
    infer: bool = False,
    instructions: str | None = None,
    event_id: UUID | None = None,
) -> list[MemoryRecord]:
    """Store memories for one user of one app. infer=True needs an LLM (MEMADMIN_LLM_PROVIDER), which
    extracts the facts following ``instructions`` (the tenant's custom_instructions) when given.
    ``event_id`` names the audit event of this add (an async add answers with it)."""
    scope.require(cap.WRITE)
    app = _writable_app(scope, app_id)
    user_id = clean_id(user_id, "user_id")
    if scope.user_id is not None and user_id != scope.user_id:
        raise NotFound()
    agent_id = clean_id(agent_id, "agent_id") if agent_id not in (None, "") else None
    run_id = clean_id(run_id, "run_id") if run_id not in (None, "") else None
    metadata = clean_metadata(metadata)
    messages = clean_messages(messages)
    if infer and not embedders.llm_configured():
        raise ValidationError("infer=true needs an LLM: set MEMADMIN_LLM_PROVIDER, or send infer=false.", field="infer")
    memory = index.mem0(app.place)
    with store.all_or_nothing(app.place), guarded.as_sent(metadata) as written:
        # Mem0 hands `prompt` to its extraction LLM as custom instructions; it is unused when infer=False.
        prompt = instructions if infer and instructions else None
        result = memory.add(
            messages, user_id=user_id, agent_id=agent_id, run_id=run_id, metadata=metadata, infer=infer, prompt=prompt
        )
    records = []
    for item in result.get("results", []):
        # The answer is what a read returns: the stored fields (created_at in Mem0's whole seconds), not a clock
        # read here. A memory an inferring add updated was not inserted; its time is the add's, to the second.
        stored = written.stored.get(item["id"])
        record = MemoryRecord.from_hash(
            app.app_id,
            item["id"],
            {
                "memory_id": item["id"],
                "memory": item.get("memory", ""),
                "user_id": user_id,
                "agent_id": agent_id,
                "run_id": run_id,
                **(stored or {"created_at": int(datetime.now(timezone.utc).timestamp())}),
            },
        )
        record.metadata = dict(metadata or {})
        record.metadata["event"] = item.get("event", "ADD")
        records.append(record)
    audit_record(
        scope=scope,
        action="memory.add",
        app_id=app.app_id,
        user_id=user_id,
        memory_ids=[r.id for r in records],
        event_id=event_id,
    )
    return records


def memory_update(
    *, scope: Scope, memory_id: str, text: str, metadata: dict | None = None, app_id: str | None = None
) -> MemoryRecord:
    """New text (re-embedded by Mem0, which writes a history row); identity never changes."""
    scope.require(cap.WRITE)
    text = clean_text(text)
    metadata = clean_metadata(metadata)
    record = memory_find(scope=scope, memory_id=memory_id, app_id=app_id)
    app = _writable_app(scope, record.app_id)
    _guarded_update(app, record.id, text=text, metadata=metadata)
    audit_record(scope=scope, action="memory.update", app_id=app.app_id, user_id=record.user_id, memory_ids=[record.id])
    return memory_find(scope=scope, memory_id=record.id, app_id=app.app_id)


def memory_edit(
    *, scope: Scope, memory_id: str, app_id: str, text: str, metadata: dict
) -> tuple[MemoryRecord, str | None]:
    """A person corrects one memory: its text (re-embedded through Mem0's update, so search finds the new text)
    and its whole metadata object (replaced, not merged). Mem0's history row names ``scope.actor``; the audit row
    says what was edited, never the text. Returns the memory as stored and what changed (None: nothing did)."""
    scope.require(cap.EDIT)
    text, metadata = clean_text(text), clean_whole_metadata(metadata)
    record = memory_find(scope=scope, memory_id=memory_id, app_id=app_id)
    app = _writable_app(scope, record.app_id)
    new_text, new_metadata = text != record.memory, metadata != record.metadata
    if not new_text and not new_metadata:
        return record, None
    edited = " and ".join(name for name, changed in (("text", new_text), ("metadata", new_metadata)) if changed)
    with guarded.editing(memory_id=record.id, actor=scope.actor, metadata=metadata if new_metadata else None):
        # Mem0 wants text or metadata: {} asks for a metadata-only update (the replacement comes from editing()).
        _guarded_update(app, record.id, text=text if new_text else None, metadata=None if new_text else {})
    audit_record(
        scope=scope,
        action="memory.edit",
        app_id=app.app_id,
        user_id=record.user_id,
        memory_ids=[record.id],
        details={"edited": edited},
    )
    return memory_find(scope=scope, memory_id=record.id, app_id=app.app_id), edited


def _guarded_update(app: AppRef, memory_id: str, *, text: str | None, metadata: dict | None) -> None:
    """Mem0's update of one memory that never brings a deleted memory back: NotFound when a deletion won."""
    key = f"{store.key_prefix(app.collection)}{memory_id}"
    with store.store_errors():
        if not _strip_identity_from_metadata(app.place, key):
            raise _lost_to_deletion(memory_id, "before its metadata was cleaned")
        try:
            # Mem0's store is guarded (store.py): its HSET writes only while the hash exists, else NotFound.
            index.mem0(app.place).update(memory_id, text=text, metadata=metadata)
        except KeyError:
            # Mem0's valkey store read nothing ("Vector with ID ... not found"): deleted since memory_find.
            if store.client(on=app.store).exists(key):
                raise
            raise _lost_to_deletion(memory_id, "before Mem0 read it") from None
        except NotFound:
            raise _lost_to_deletion(memory_id, "between Mem0's read and its write") from None
        if _deleted_meanwhile(app.place, memory_id):
            raise _lost_to_deletion(memory_id, "after Mem0's write; its history row was erased again")


def _lost_to_deletion(memory_id: str, when: str) -> NotFound:
    # An update and a deletion of one memory raced and the deletion won: the update is a 404 and wrote nothing.
    logger.info("Update of memory %s lost to its deletion %s.", memory_id, when)
    return NotFound()


def _strip_identity_from_metadata(place: Place, key: str) -> bool:
    """Mem0's update rebuilds the hash from a payload where metadata keys override the TAGs (mem0 #6655):
    a user_id an agent smuggled into metadata would move the memory to that user. Drop such keys first.
    False when the hash was deleted meanwhile."""
    raw = store.client(on=place.store).hget(key, "metadata")
    try:
        metadata = json.loads(raw) if raw else None
    except ValueError:
        return True
    if isinstance(metadata, dict) and IDENTITY_KEYS & metadata.keys():
        clean = {k: v for k, v in metadata.items() if k not in IDENTITY_KEYS}
        # A plain HSET after a deletion would leave a hash of one field: the memory's id alive again.
        return guarded.hset_existing(store.client(on=place.store), key, {"metadata": json.dumps(clean)})
    return True


def _deleted_meanwhile(place: Place, memory_id: str) -> bool:
    """After Mem0 wrote to an existing memory: True, with its history rows erased again, if it is gone.

    Mem0 writes its history row (old and new text) after the HSET. A deletion between the two erases the
    history first and the row lands after it: the erased text would be back. So the hash is checked once the
    row is written. Either the deletion's UNLINK came before this check (then the rows go here) or after it
    (then the deletion's own history erasure, which follows its UNLINK, runs after the row was written):
    the row never outlives both."""
    with store.store_errors():
        if store.client(on=place.store).exists(f"{store.key_prefix(place.collection)}{memory_id}"):
            return False
    history_delete(place, [memory_id])
    return True


__all__ = [
    "check_holds",
    "memory_add",
    "memory_delete",
    "memory_delete_batch",
    "memory_delete_matching",
    "memory_edit",
    "memory_update",
]
