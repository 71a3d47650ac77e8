"""Scoped deletions: one memory, a batch, everything matching a filter. Every one is verified (a scoped count of 0
on a healthy index, or a job's SCAN), writes its erasure receipt and marks its store for the disk purge.
``services`` is the public door to these (tenants import them from there)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

from django.conf import settings
from django.db import transaction

from memadmin.memory import bulk, store
from memadmin.memory import capabilities as cap
from memadmin.memory.audit import audit_record
from memadmin.memory.consistency import index_health
from memadmin.memory.errors import Conflict, NotFound, ValidationError
from memadmin.memory.filters import EVERYTHING, Eq, In, Node, and_, filter_from_fields, pinned_value, render
from memadmin.memory.history import history_delete
from memadmin.memory.models import LegalHold
from memadmin.memory.purge import erasure_mark
from memadmin.memory.receipts import MEMORIES, MEMORY, erasure_kind, receipt_for_scope
from memadmin.memory.records import DeletionResult
from memadmin.memory.scope import AppRef, Scope
from memadmin.memory.selectors import app_count, memory_count, memory_find, plan

logger = logging.getLogger("memadmin.memory")


def _not_moving(app: AppRef) -> None:
    # A key deleted from the old store after the move copied it would live on in the new one.
    if app.moving:
        raise Conflict(
            f"App {app.app_id} is being moved to another memory store; deletions in it wait until "
            "the move has finished (minutes). Try again then.",
            status="moving",
        )


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
    app = scope.require_writes(scope.app(record.app_id))
    _not_moving(app)
    check_holds(
        scope=scope,
        filters=filter_from_fields(user_id=record.user_id, app_id=app.app_id)
        if record.user_id
        else filter_from_fields(app_id=app.app_id),
    )
    key = f"{store.key_prefix(app.collection)}{record.id}"
    # UNLINK of the one key, not Mem0's delete: Mem0 reads the hash back and writes a DELETE history row
    # (with the text) that the next line would delete again; 10x the cost of the erasure itself.
    with store.store_errors():
        if not store.client(on=app.store).unlink(key):
            raise NotFound()
        remaining = store.client(on=app.store).exists(key)
    erasure_mark(on=app.store)
    history = history_delete(app.place, [record.id])
    result = DeletionResult(verified_at=datetime.now(timezone.utc))
    result.add_app(app.app_id, deleted=1, history=history, messages=0, unindexed=0, remaining=remaining)
    with transaction.atomic():  # the audit event and the receipt are written together, or neither
        if receipt:
            written = receipt_for_scope(
                scope=scope,
                kind=MEMORY,
                per_app=result.per_app,
                user_id=record.user_id,
                filters=and_(Eq("memory_id", record.id), *([Eq("user_id", record.user_id)] if record.user_id else [])),
                verification=_key_verification(result),
            )
            result.receipt_id = str(written.pk)
        # The event names its receipt, so the audit log's row leads to it.
        details = {"remaining": remaining, "receipt_id": result.receipt_id}
        audit_record(
            scope=scope,
            action="memory.delete",
            app_id=app.app_id,
            user_id=record.user_id,
            memory_ids=[record.id],
            details=details,
        )
    return result


def _key_verification(result: DeletionResult) -> dict:
    # One known key: EXISTS on it is the count; no index needs to vouch for anything.
    return {
        "method": "key",
        "remaining": result.remaining,
        "verified_at": result.verified_at.isoformat(),
        "detail": "UNLINK of the memory's key, then EXISTS on it: 0; its Mem0 history rows deleted.",
    }


def memory_delete_batch(*, scope: Scope, memory_ids: list[tuple[str, str]]) -> DeletionResult:
    """Erase a batch of memories, (memory_id, app_id) pairs already found in the scope: all or nothing is
    refused up front (a move, a legal hold), then one receipt for the batch."""
    scope.require(cap.DELETE)
    records = [memory_find(scope=scope, memory_id=memory_id, app_id=app_id) for memory_id, app_id in memory_ids]
    for app_id in sorted({r.app_id for r in records}):
        scope.require_writes(scope.app(app_id))
    for app_id in sorted({r.app_id for r in records if scope.app(r.app_id).moving}):
        raise Conflict(
            f"App {app_id} is being moved to another memory store: nothing in the batch was deleted. "
            "Try again when the move has finished.",
            status="moving",
        )
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
            scope=scope,
            kind=MEMORIES,
            per_app=result.per_app,
            user_id=user_id,
            filters=In("memory_id", tuple(sorted(r.id for r in records))),
            verification={
                **_key_verification(result),
                "detail": "UNLINK of each memory's key, then EXISTS on it: 0; their Mem0 history rows deleted.",
            },
        )
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
    planned = plan(scope, filters)
    for app, _ in planned:
        scope.require_writes(app)
    check_holds(scope=scope, filters=filters)
    matched = memory_count(scope=scope, filters=filters)
    deferred = None
    if any(app.moving for app, _ in planned):
        deferred = "moving"  # the job waits for the move to end (tenants/jobs/runners.py)
    elif matched > settings.MEMADMIN_ERASURE_SYNC_LIMIT:
        deferred = "large"
    elif any(not index_health(place=app.place).healthy for app, _ in planned):
        deferred = "index_unhealthy"
    if deferred:
        return DeletionResult(deferred=deferred, matched=matched)
    state = {"done": 0}

    def on_progress(cursor: dict) -> None:
        if progress and cursor.get("done", 0) != state["done"]:
            state["done"] = cursor["done"]
            progress(state["done"])

    cursor = bulk.matching_drop(
        scope=scope,
        filters=filters,
        cursor={},
        progress=on_progress,
        batch_size=batch_size,
        scan_fallback=False,
        allow_whole_app=allow_whole_app,
        journal=False,
    )
    result = DeletionResult(matched=matched)
    for app_id, line in cursor["apps"].items():
        if line["phase"] == "unverified":  # the index went unhealthy while we deleted: a job finishes it
            result.deferred = "index_unhealthy"
        result.add_app(
            app_id, line["memories"], line["history_rows"], line["messages"], line["unindexed"], line["remaining"] or 0
        )
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
                scope=scope,
                kind=erasure_kind(actor_kind=scope.actor_kind, tree=tree),
                per_app=result.per_app,
                filters=filters,
                user_id=pinned_user,
                verification=_index_verification(result),
            )
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
