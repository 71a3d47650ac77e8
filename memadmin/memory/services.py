"""Scoped writes and deletions. Every deletion is verified: scoped count 0 on a healthy index (or a job's SCAN)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from uuid import UUID

from django.conf import settings
from django.db import transaction

from memadmin.memory import bulk, embedders, guarded, index, store
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
from memadmin.memory.purge import erasure_mark
from memadmin.memory.receipts import MEMORIES, MEMORY, erasure_kind, receipt_for_scope
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
    if infer and not embedders.llm_configured():
        raise ValidationError("infer=true needs an LLM: set MEMADMIN_LLM_PROVIDER, or send infer=false.", field="infer")
    memory = index.mem0(app.collection)
    with store.all_or_nothing(app.collection), guarded.as_sent(metadata) as written:
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
        record = MemoryRecord.from_hash(app.app_id, item["id"], {
            "memory_id": item["id"], "memory": item.get("memory", ""), "user_id": user_id, "agent_id": agent_id,
            "run_id": run_id, **(stored or {"created_at": int(datetime.now(timezone.utc).timestamp())}),
        })  # fmt: skip
        record.metadata = dict(metadata or {})
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
    key = f"{store.key_prefix(app.collection)}{record.id}"
    with store.store_errors():
        if not _strip_identity_from_metadata(app.collection, key):
            raise _lost_to_deletion(record.id, "before its metadata was cleaned")
        try:
            # Mem0's store is guarded (store.py): its HSET writes only while the hash exists, else NotFound.
            index.mem0(app.collection).update(record.id, text=text.strip(), metadata=metadata)
        except KeyError:
            # Mem0's valkey store read nothing ("Vector with ID ... not found"): deleted since memory_find.
            if store.client(app.collection).exists(key):
                raise
            raise _lost_to_deletion(record.id, "before Mem0 read it") from None
        except NotFound:
            raise _lost_to_deletion(record.id, "between Mem0's read and its write") from None
        if _deleted_meanwhile(app.collection, record.id):
            raise _lost_to_deletion(record.id, "after Mem0's write; its history row was erased again")
    audit_record(scope=scope, action="memory.update", app_id=app.app_id, user_id=record.user_id,
                 memory_ids=[record.id])  # fmt: skip
    return memory_find(scope=scope, memory_id=record.id, app_id=app.app_id)


def _lost_to_deletion(memory_id: str, when: str) -> NotFound:
    # An update and a deletion of one memory raced and the deletion won: the update is a 404 and wrote nothing.
    logger.info("Update of memory %s lost to its deletion %s.", memory_id, when)
    return NotFound()


def _strip_identity_from_metadata(collection: str, key: str) -> bool:
    """Mem0's update rebuilds the hash from a payload where metadata keys override the TAGs (mem0 #6655):
    a user_id an agent smuggled into metadata would move the memory to that user. Drop such keys first.
    False when the hash was deleted meanwhile."""
    raw = store.client(collection).hget(key, "metadata")
    try:
        metadata = json.loads(raw) if raw else None
    except ValueError:
        return True
    if isinstance(metadata, dict) and IDENTITY_KEYS & metadata.keys():
        clean = {k: v for k, v in metadata.items() if k not in IDENTITY_KEYS}
        # A plain HSET after a deletion would leave a hash of one field: the memory's id alive again.
        return guarded.hset_existing(store.client(collection), key, {"metadata": json.dumps(clean)})
    return True


def _deleted_meanwhile(collection: str, memory_id: str) -> bool:
    """After Mem0 wrote to an existing memory: True, with its history rows erased again, if it is gone.

    Mem0 writes its history row (old and new text) after the HSET. A deletion between the two erases the
    history first and the row lands after it: the erased text would be back. So the hash is checked once the
    row is written. Either the deletion's UNLINK came before this check (then the rows go here) or after it
    (then the deletion's own history erasure, which follows its UNLINK, runs after the row was written):
    the row never outlives both."""
    with store.store_errors():
        if store.client(collection).exists(f"{store.key_prefix(collection)}{memory_id}"):
            return False
    history_delete(collection, [memory_id])
    return True


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


def memory_delete(*, scope: Scope, memory_id: str, app_id: str | None = None, receipt: bool = True) -> DeletionResult:
    """Erase one memory: the hash, and Mem0's history rows (which would keep its text); with a signed receipt
    (``receipt=False``: part of a batch, whose one receipt memory_delete_batch writes)."""
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
    erasure_mark(collection=app.collection)
    history = history_delete(app.collection, [record.id])
    result = DeletionResult(verified_at=datetime.now(timezone.utc))
    result.add_app(app.app_id, deleted=1, history=history, messages=0, unindexed=0, remaining=remaining)
    with transaction.atomic():  # the audit event and the receipt are written together, or neither
        if receipt:
            written = receipt_for_scope(
                scope=scope, kind=MEMORY, per_app=result.per_app, user_id=record.user_id,
                filters=and_(Eq("memory_id", record.id), *([Eq("user_id", record.user_id)] if record.user_id else [])),
                verification=_key_verification(result),
            )  # fmt: skip
            result.receipt_id = str(written.pk)
        # The event names its receipt, so the audit log's row leads to it.
        details = {"remaining": remaining, "receipt_id": result.receipt_id}
        audit_record(scope=scope, action="memory.delete", app_id=app.app_id, user_id=record.user_id,
                     memory_ids=[record.id], details=details)  # fmt: skip
    return result


def _key_verification(result: DeletionResult) -> dict:
    # One known key: EXISTS on it is the count; no index needs to vouch for anything.
    return {"method": "key", "remaining": result.remaining, "verified_at": result.verified_at.isoformat(),
            "detail": "UNLINK of the memory's key, then EXISTS on it: 0; its Mem0 history rows deleted."}  # fmt: skip


def memory_delete_batch(*, scope: Scope, memory_ids: list[tuple[str, str]]) -> DeletionResult:
    """Erase a batch of memories, (memory_id, app_id) pairs already found in the scope: all or nothing is
    refused up front (a move, a legal hold), then one receipt for the batch."""
    scope.require(cap.DELETE)
    records = [memory_find(scope=scope, memory_id=memory_id, app_id=app_id) for memory_id, app_id in memory_ids]
    for app_id in sorted({r.app_id for r in records if scope.app(r.app_id).moving}):
        raise Conflict(f"App {app_id} is being moved to another memory store: nothing in the batch was deleted. "
                       "Try again when the move has finished.", status="moving")  # fmt: skip
    for user_id, app_id in sorted({(r.user_id or "", r.app_id) for r in records}):
        check_holds(scope=scope, filters=filter_from_fields(user_id=user_id, app_id=app_id))
    result = DeletionResult()
    for record in records:
        one = memory_delete(scope=scope, memory_id=record.id, app_id=record.app_id, receipt=False)
        line = result.per_app.get(record.app_id)
        counts = one.per_app[record.app_id]
        if line is None:
            result.add_app(record.app_id, 0, 0, 0, 0, 0)
            line = result.per_app[record.app_id]
        for name, value in counts.items():
            line[name] += value
        result.deleted += one.deleted
        result.history_deleted += one.history_deleted
        result.remaining += one.remaining
    result.verified_at = datetime.now(timezone.utc)
    if records:
        users = {r.user_id for r in records}
        user_id = users.pop() if len(users) == 1 else None
        written = receipt_for_scope(
            scope=scope, kind=MEMORIES, per_app=result.per_app, user_id=user_id,
            filters=In("memory_id", tuple(sorted(r.id for r in records))),
            verification={**_key_verification(result), "detail": "UNLINK of each memory's key, then EXISTS on it: 0; "
                          "their Mem0 history rows deleted."},
        )  # fmt: skip
        result.receipt_id = str(written.pk)
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
        _record_matching(scope, filters, tree, result, pinned_user)
    if result.remaining:
        logger.error("Deletion in %s left %s memories", scope.tenant_slug, result.remaining)
    return result


def _record_matching(scope: Scope, filters: Node, tree: Node, result: DeletionResult, pinned_user: str | None) -> None:
    """The audit event and, when something was erased and verified, the signed receipt: together, or neither."""
    with transaction.atomic():
        if not result.deferred and result.deleted:
            written = receipt_for_scope(
                scope=scope, kind=erasure_kind(actor_kind=scope.actor_kind, tree=tree), per_app=result.per_app,
                filters=filters, user_id=pinned_user, verification=_index_verification(result),
            )  # fmt: skip
            result.receipt_id = str(written.pk)
        audit_record(
            scope=scope,
            action="memory.delete_matching",
            user_id=pinned_user,
            app_id=next(iter(result.per_app)) if len(result.per_app) == 1 else "",
            count=result.deleted,
            details={"filter": render_for_audit(filters), **result.as_dict()},
        )


def _index_verification(result: DeletionResult) -> dict:
    return {
        "method": "index",
        "remaining": result.remaining,
        "verified_at": result.verified_at.isoformat() if result.verified_at else None,
        "index_healthy": {app_id: bool((health or {}).get("healthy")) for app_id, health in result.indexes.items()},
        "detail": "FT.SEARCH count in scope 0 on each app's index while it was healthy (FT.INFO: no hash indexing "
        "failure, not indexing, nothing missing at the last consistency check).",
    }


def render_for_audit(filters: Node) -> str:
    try:
        return render(filters)
    except ValidationError:
        return repr(filters)


__all__ = [
    "Eq",
    "check_holds",
    "memory_add",
    "memory_delete",
    "memory_delete_batch",
    "memory_delete_matching",
    "memory_update",
]
