"""What happened in a tenant, read from the audit trail: the kinds of activity the events feed
(GET /v1/events/) and the audit page's activity filter show, and an event's shape and status for the API.

The audit trail also records reads, searches, sign-in failures, keys and links; the feed keeps to the changes
a tenant's own systems follow: adds, updates, deletions, erasures, offboardings and exports."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from memadmin.memory.capabilities import READ_EVENTS
from memadmin.memory.errors import NotFound
from memadmin.memory.models import AuditEvent
from memadmin.memory.scope import Scope
from tenants.models import Job

CATEGORIES: dict[str, tuple[str, ...]] = {
    "memories": ("memory.add", "memory.update", "memory.delete", "memory.delete_matching"),
    "erasures": ("user.erase_requested", "user.erase", "retention.apply"),
    "offboardings": ("app.offboard_requested", "app.offboard"),
    "exports": ("memory.export", "export.requested", "export.completed", "export.failed"),
}
ACTIVITY = tuple(action for actions in CATEGORIES.values() for action in actions)
CATEGORY_CHOICES = [
    ("", "Everything"),
    ("activity", "All activity"),
    ("memories", "Adds, updates, deletions"),
    ("erasures", "Erasures"),
    ("offboardings", "Offboardings"),
    ("exports", "Exports"),
]
# A requested job's event reads as its job's state until the job ends (its own event follows then).
JOB_STATUS = {
    Job.State.SCHEDULED: "PENDING",
    Job.State.RUNNING: "RUNNING",
    Job.State.SUCCEEDED: "SUCCEEDED",
    Job.State.FAILED: "FAILED",
    Job.State.CANCELLED: "CANCELLED",
}
DETAIL_KEYS = ("job", "kind", "reason", "format", "receipt", "verified_at", "grace_hours", "run_after")


def category_actions(category: str) -> tuple[str, ...]:
    return ACTIVITY if category == "activity" else CATEGORIES[category]


def activity_events(*, scope: Scope, app_ids: list[str] | None) -> QuerySet:
    """The tenant's activity, newest first; ``app_ids`` (an app-restricted key's apps) keeps to events of those
    apps, which leaves out tenant-wide ones (an erasure across every app names no single app)."""
    scope.require(READ_EVENTS)
    events = AuditEvent.objects.for_tenant(scope.tenant_id).filter(action__in=ACTIVITY)
    return events.filter(app_id__in=app_ids) if app_ids is not None else events


def activity_event(*, scope: Scope, app_ids: list[str] | None, event_id: UUID) -> AuditEvent:
    event = activity_events(scope=scope, app_ids=app_ids).filter(event_id=event_id).first()
    if event is None:
        raise NotFound("Event not found.")
    return event


def event_payloads(events) -> list[dict]:
    """Events as the API shows them (ids and counts, never memory text; no IP addresses)."""
    events = list(events)
    job_ids = {e.details.get("job") for e in events if e.action.endswith("_requested") and e.details.get("job")}
    states = dict(Job.objects.filter(pk__in=job_ids).values_list("pk", "state")) if job_ids else {}
    states = {str(pk): state for pk, state in states.items()}
    return [
        {
            "id": str(e.event_id),
            "event_type": e.action,
            "status": _status(e, states),
            "created_at": e.created_at,
            "actor": e.actor,
            "actor_kind": e.actor_kind,
            "app_id": e.app_id or None,
            "user_id": e.user_id or None,
            "memory_ids": e.memory_ids,
            "count": e.count,
            "details": {key: e.details[key] for key in DETAIL_KEYS if key in e.details},
        }
        for e in events
    ]


def _status(event: AuditEvent, job_states: dict) -> str:
    if event.action == "export.failed":
        return "FAILED"
    if event.action.endswith("_requested"):
        return JOB_STATUS.get(job_states.get(event.details.get("job")), "SUCCEEDED")
    return "SUCCEEDED"
