"""Audit events, written by the memory service itself so that no caller can forget one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from django.db import transaction

from memadmin.memory.models import AuditEvent, AuditSubject
from memadmin.memory.scope import Scope

MAX_IDS = 100
SUBJECT_BATCH = 1000


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
    subjects: Mapping[str, int] | Iterable[str] | None = None,
) -> AuditEvent:
    """One audit row. ``subjects``: the end users whose memories the event showed, exported, sent or deleted
    when ``user_id`` cannot name them all (a user id -> how many of their memories, or just the ids); they
    land in ``details["user_ids"]`` (the first MAX_IDS) and one AuditSubject row each, which is what a
    person's "who looked at your data" list finds. A caller that only sets ``details["user_ids"]`` gets the
    same rows."""
    ids = list(memory_ids)
    details = dict(details or {})
    if subjects is None and isinstance(details.get("user_ids"), list):
        subjects = [u for u in details["user_ids"] if isinstance(u, str)]
    people = _subject_counts(subjects)
    if people:
        details["user_ids"] = sorted(people)[:MAX_IDS]
        if len(people) > MAX_IDS:
            details["user_ids_truncated"] = len(people)
    # One transaction with whatever reacts to the row (post_save: tenants' webhook outbox), so an event is
    # recorded with its deliveries or not at all; no savepoint when the caller already has a transaction.
    with transaction.atomic(savepoint=False):
        event = AuditEvent.objects.create(
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
            details={**details, **({"ids_truncated": True} if len(ids) > MAX_IDS else {})},
        )
        _subjects_write(event, people)
        return event


def _subject_counts(subjects) -> dict[str, int]:
    if not subjects:
        return {}
    if isinstance(subjects, Mapping):
        return {str(u): int(n) for u, n in subjects.items() if u}
    return dict.fromkeys((str(u) for u in subjects if u), 0)


def _subjects_write(event: AuditEvent, people: dict[str, int]) -> None:
    """Every person, in batches (a whole-app export or offboarding names each of its users once); the event's
    own user_id column already finds that one person."""
    rows = [
        AuditSubject(event=event, tenant_id=event.tenant_id, user_id=user_id[:128], count=count)
        for user_id, count in people.items()
        if user_id != event.user_id
    ]
    for start in range(0, len(rows), SUBJECT_BATCH):
        AuditSubject.objects.bulk_create(rows[start : start + SUBJECT_BATCH])
