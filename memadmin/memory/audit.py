"""Audit events, written by the memory service itself so that no caller can forget one."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from memadmin.memory.models import AuditEvent
from memadmin.memory.scope import Scope

MAX_IDS = 100


def audit_record(
    *,
    scope: Scope,
    action: str,
    app_id: str = "",
    user_id: str | None = None,
    memory_ids=(),
    count: int = 0,
    details: dict | None = None,
    event_id: UUID | None = None,
) -> AuditEvent:
    ids = list(memory_ids)
    # One transaction with whatever reacts to the row (post_save: tenants' webhook outbox), so an event is
    # recorded with its deliveries or not at all; no savepoint when the caller already has a transaction.
    with transaction.atomic(savepoint=False):
        return AuditEvent.objects.create(
            **({"event_id": event_id} if event_id else {}),
            tenant_id=scope.tenant_id,
            actor=scope.actor,
            actor_kind=scope.actor_kind,
            role=scope.role,
            action=action,
            app_id=app_id or "",
            user_id=user_id or scope.user_id or "",
            memory_ids=ids[:MAX_IDS],
            count=count or len(ids),
            ip=scope.ip,
            details={**(details or {}), **({"ids_truncated": True} if len(ids) > MAX_IDS else {})},
        )
