"""Scoped writes and deletions. Every deletion is verified: scoped count 0 on a healthy index (or a job's SCAN)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from uuid import UUID

from django.conf import settings

from memadmin.memory import bulk, index, store
from memadmin.memory import capabilities as cap
from memadmin.memory.audit import audit_record
from memadmin.memory.consistency import index_health
from memadmin.memory.errors import Conflict, NotFound, ValidationError
from memadmin.memory.filters import (
    EVERYTHING,
    Eq,
    In,
    Node,
    and_,
    filter_from_fields,
    pinned_value,
    render,
)
from memadmin.memory.history import history_delete
from memadmin.memory.ids import clean_id
from memadmin.memory.models import LegalHold
from memadmin.memory.records import DeletionResult, MemoryRecord
from memadmin.memory.scope import AppRef, Scope
from memadmin.memory.selectors import app_count, memory_count, memory_find, plan

logger = logging.getLogger("memadmin.memory")

RESERVED_METADATA = frozenset({"user_id", "agent_id", "run_id", "app_id", "memory_id", "hash", "data",
                               "created_at", "updated_at", "text_lemmatized"})  # fmt: skip
IDENTITY_KEYS = frozenset({"user_id", "agent_id", "run_id"})
MAX_MESSAGES = 100
MAX_MESSAGE_CHARS = 20_000
ROLES = ("user", "assistant", "system")


# --- validation -----------------------------------------------------------------


def clean_metadata(metadata) -> dict | None:
    """A write's metadata: an object without identity keys (the API, imports)."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be a JSON object.", field="metadata")
    reserved = sorted(RESERVED_METADATA & set(metadata))
    if reserved:
        # Mem0 #6655: identity in metadata could move a memory into another scope.
        raise ValidationError(f"metadata cannot set reserved keys: {', '.join(reserved)}.", field="metadata")
    return metadata


def _clean_messages(messages) -> list[dict]:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list) or not messages:
        raise ValidationError("messages must be a non-empty string or list of {role, content}.", field="messages")
    if len(messages) > MAX_MESSAGES:
        raise ValidationError(f"At most {MAX_MESSAGES} messages per call.", field="messages")
    cleaned = []
    for message in messages:
        if not isinstance(message, dict):
            raise ValidationError("Each message must be an object with role and content.", field="messages")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValidationError(f"message role must be one of {', '.join(ROLES)}.", field="messages")
        if not isinstance(content, str) or not content.strip():
            raise ValidationError("message content must be non-empty text.", field="messages")
        if len(content) > MAX_MESSAGE_CHARS:
            raise ValidationError(f"message content is over {MAX_MESSAGE_CHARS} characters.", field="messages")
        item = {"role": role, "content": content.strip()}
        if message.get("name"):
            item["name"] = clean_id(message["name"], "name")
        cleaned.append(item)
    if all(m["role"] == "system" for m in cleaned):
        raise ValidationError("messages need at least one user or assistant message.", field="messages")
    return cleaned


def _writable_app(scope: Scope, app_id: str) -> AppRef:
    app = scope.app_named(app_id)
    if not app.writable:
        raise Conflict(app.frozen_message(), status="frozen")
    return app


def _not_moving(app: AppRef) -> None:
    # A key deleted from the old store after the move copied it would live on in the new one.
    if app.moving:
        raise Conflict(f"App {app.app_id} is being moved to another memory store; deletions in it wait until "
                       "the move has finished (minutes). Try again then.", status="moving")  # fmt: skip


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
    messages = _clean_messages(messages)
    if infer and not store.llm_configured():
        raise ValidationError("infer=true needs an LLM: set MEMADMIN_LLM_PROVIDER, or send infer=false.", field="infer")
    memory = index.mem0(app.collection)
    with store.all_or_nothing(app.collection):
        # Mem0 hands `prompt` to its extraction LLM as custom instructions; it is unused when infer=False.
        prompt = instructions if infer and instructions else None
        result = memory.add(
            messages, user_id=user_id, agent_id=agent_id, run_id=run_id, metadata=metadata, infer=infer, prompt=prompt
        )
    records = []
    for item in result.get("results", []):
        record = MemoryRecord(
            id=item["id"], app_id=app.app_id, memory=item.get("memory", ""), user_id=user_id,
            agent_id=agent_id, run_id=run_id, metadata=dict(metadata or {}),
            created_at=datetime.now(timezone.utc),
        )  # fmt: skip
        record.metadata["event"] = item.get("event", "ADD")
        records.append(record)
    audit_record(scope=scope, action="memory.add", app_id=app.app_id, user_id=user_id,
                 memory_ids=[r.id for r in records], event_id=event_id)  # fmt: skip
    return records


def memory_update(
    *, scope: Scope, memory_id: str, text: str, metadata: dict | None = None, app_id: str | None = None
) -> MemoryRecord:
    """New text (re-embedded by Mem0, which writes a history row); identity never changes."""
    scope.require(cap.WRITE)
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("text must be non-empty.", field="text")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ValidationError(f"text is over {MAX_MESSAGE_CHARS} characters.", field="text")
    metadata = clean_metadata(metadata)
    record = memory_find(scope=scope, memory_id=memory_id, app_id=app_id)
    app = _writable_app(scope, record.app_id)
    with store.store_errors():
        _strip_identity_from_metadata(app.collection, f"{store.key_prefix(app.collection)}{record.id}")
        index.mem0(app.collection).update(record.id, text=text.strip(), metadata=metadata)
    audit_record(scope=scope, action="memory.update", app_id=app.app_id, user_id=record.user_id,
                 memory_ids=[record.id])  # fmt: skip
    return memory_find(scope=scope, memory_id=record.id, app_id=app.app_id)


def _strip_identity_from_metadata(collection: str, key: str) -> None:
    """Mem0's update rebuilds the hash from a payload where metadata keys override the TAGs (mem0 #6655):
    a user_id an agent smuggled into metadata would move the memory to that user. Drop such keys first."""
    raw = store.client(collection).hget(key, "metadata")
    try:
        metadata = json.loads(raw) if raw else None
    except ValueError:
        return
    if isinstance(metadata, dict) and IDENTITY_KEYS & metadata.keys():
        clean = {k: v for k, v in metadata.items() if k not in IDENTITY_KEYS}
        store.client(collection).hset(key, "metadata", json.dumps(clean))


# --- deletions --------------------------------------------------------------------


def check_holds(*, scope: Scope, filters: Node, apps: list[AppRef] | None = None) -> None:
    """Refuse a deletion that would touch anything under legal hold."""
    planned = plan(scope, filters)
    app_pks = [app.pk for app, _ in planned] if apps is None else [a.pk for a in apps]
    holds = LegalHold.objects.for_tenant(scope.tenant_id).active()
    if holds.filter(user_id="", app__isnull=True).exists():
        raise Conflict("This tenant is under legal hold: no memory can be deleted.", status="legal_hold")
    if holds.filter(user_id="", app_id__in=app_pks).exists():
        raise Conflict("An app in this deletion is under legal hold.", status="legal_hold")
    held = set(holds.exclude(user_id="").values_list("user_id", flat=True))
    if not held:
        return
    pinned = pinned_value(scope.narrowed(filters), "user_id")
    if pinned is not None:
        if pinned in held:
            raise Conflict(f"User {pinned} is under legal hold: their memories cannot be deleted.", status="legal_hold")
        return
    held_filter = and_(filters, In("user_id", tuple(sorted(held))))
    if any(app_count(app=app, tree=tree) for app, tree in plan(scope, held_filter)):
        raise Conflict("Some matching memories belong to users under legal hold.", status="legal_hold")


def memory_delete(*, scope: Scope, memory_id: str, app_id: str | None = None) -> DeletionResult:
    """Erase one memory: the hash, and Mem0's history rows (which would keep its text)."""
    scope.require(cap.DELETE)
    record = memory_find(scope=scope, memory_id=memory_id, app_id=app_id)
    app = scope.app(record.app_id)
    _not_moving(app)
    check_holds(scope=scope, filters=filter_from_fields(user_id=record.user_id, app_id=app.app_id) if record.user_id
                else filter_from_fields(app_id=app.app_id))  # fmt: skip
    key = f"{store.key_prefix(app.collection)}{record.id}"
    # UNLINK of the one key, not Mem0's delete: Mem0 reads the hash back and writes a DELETE history row
    # (with the text) that the next line would delete again; 10x the cost of the erasure itself.
    with store.store_errors():
        if not store.client(app.collection).unlink(key):
            raise NotFound()
        remaining = store.client(app.collection).exists(key)
    history = history_delete(app.collection, [record.id])
    result = DeletionResult(verified_at=datetime.now(timezone.utc))
    result.add_app(app.app_id, deleted=1, history=history, messages=0, unindexed=0, remaining=remaining)
    audit_record(scope=scope, action="memory.delete", app_id=app.app_id, user_id=record.user_id,
                 memory_ids=[record.id], details={"remaining": remaining})  # fmt: skip
    return result


def memory_delete_matching(
    *,
    scope: Scope,
    filters: Node,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    allow_whole_app: bool = False,
    audit: bool = True,
) -> DeletionResult:
    """Delete every memory the filters match in the scope, with history and messages, now; verified.

    This is the deletion engine (bulk.matching_drop) run inside the request, so it only takes work
    it can prove complete at O(what matches): up to MEMADMIN_ERASURE_SYNC_LIMIT memories, over apps whose
    index is healthy. Otherwise nothing is deleted and the result says ``deferred`` ("large" or
    "index_unhealthy"): the caller runs the same engine as a job (tenants: job_erase), which SCANs an
    unhealthy app's prefix and ends with a receipt."""
    scope.require(cap.DELETE)
    tree = scope.narrowed(filters)
    if tree == EVERYTHING and not allow_whole_app:
        raise ValidationError("A deletion needs at least one filter; offboard the app to delete all of it.")
    if not 1 <= batch_size <= 10_000:
        raise ValidationError("batch_size must be between 1 and 10000.", field="batch_size")
    check_holds(scope=scope, filters=filters)
    planned = plan(scope, filters)
    matched = memory_count(scope=scope, filters=filters)
    deferred = None
    if any(app.moving for app, _ in planned):
        deferred = "moving"  # the job waits for the move to end (tenants/jobs/runners.py)
    elif matched > settings.MEMADMIN_ERASURE_SYNC_LIMIT:
        deferred = "large"
    elif any(not index_health(collection=app.collection).healthy for app, _ in planned):
        deferred = "index_unhealthy"
    if deferred:
        return DeletionResult(deferred=deferred, matched=matched)
    state = {"done": 0}

    def on_progress(cursor: dict) -> None:
        if progress and cursor.get("done", 0) != state["done"]:
            state["done"] = cursor["done"]
            progress(state["done"])

    cursor = bulk.matching_drop(scope=scope, filters=filters, cursor={}, progress=on_progress, batch_size=batch_size,
                                scan_fallback=False, allow_whole_app=allow_whole_app, journal=False)  # fmt: skip
    result = DeletionResult(matched=matched)
    for app_id, line in cursor["apps"].items():
        if line["phase"] == "unverified":  # the index went unhealthy while we deleted: a job finishes it
            result.deferred = "index_unhealthy"
        result.add_app(app_id, line["memories"], line["history_rows"], line["messages"], line["unindexed"],
                       line["remaining"] or 0)  # fmt: skip
        result.indexes[app_id] = line.get("index")
    result.verified_at = None if result.deferred else datetime.now(timezone.utc)
    pinned_user = pinned_value(tree, "user_id")
    if audit:
        audit_record(
            scope=scope,
            action="memory.delete_matching",
            user_id=pinned_user,
            app_id=next(iter(result.per_app)) if len(result.per_app) == 1 else "",
            count=result.deleted,
            details={"filter": render_for_audit(filters), **result.as_dict()},
        )
    if result.remaining:
        logger.error("Deletion in %s left %s memories", scope.tenant_slug, result.remaining)
    return result


def render_for_audit(filters: Node) -> str:
    try:
        return render(filters)
    except ValidationError:
        return repr(filters)


__all__ = ["Eq", "check_holds", "memory_add", "memory_delete", "memory_delete_matching", "memory_update"]
