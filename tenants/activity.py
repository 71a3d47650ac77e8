"""What happened in a tenant, read from the audit trail: the kinds of activity the events feed
(GET /v1/events/) and the audit page's activity filter show, and an event's shape and status for the API.

The audit trail also records reads, searches, sign-in failures, keys and links; the feed keeps to the changes
a tenant's own systems follow: adds, updates, deletions, erasures, offboardings and exports.

An app's writes and deletions per day (the app page's chart) come from the same trail, not the store: deletions
leave nothing in Valkey or in Mem0's history (erasure removes both), and only the trail knows them. It holds every
write made through memadmin (API, seed, import) and every deletion of any kind; writes an agent makes with Mem0
OSS straight into Valkey are not in it. The cost follows the window, not the app: one GROUP BY day over the app's
events of the last days (indexed by created_at), plus the few deletions that spanned several apps, read one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from uuid import UUID

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from memadmin.memory.capabilities import READ_EVENTS
from memadmin.memory.errors import NotFound
from memadmin.memory.models import AuditEvent
from memadmin.memory.scope import Scope
from tenants.jobs.models import Job
from tenants.models import App

CATEGORIES: dict[str, tuple[str, ...]] = {
    "memories": ("memory.add", "memory.update", "memory.edit", "memory.delete", "memory.delete_matching"),
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


# --- an app's activity per day (the app page's chart) ---

WRITES = ("memory.add", "memory.update", "memory.edit", "memory.import")
DELETIONS = ("memory.delete", "memory.delete_matching", "user.erase", "retention.apply", "app.offboard")
DAYS = 30

# Chart geometry (SVG user units; the SVG scales to its box).
WIDTH, HEIGHT, TOP, BOTTOM = 800, 140, 8, 20
SLOT = WIDTH / DAYS
BAR = SLOT * 0.36


@dataclass
class Day:
    day: date
    writes: int = 0
    deletions: int = 0


def app_activity(*, app: App, days: int = DAYS) -> list[Day]:
    """Writes and deletions of one app per day over the last `days` days (today included), oldest first."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    by_day = {first + timedelta(days=n): Day(first + timedelta(days=n)) for n in range(days)}
    since = timezone.make_aware(datetime.combine(first, time.min))
    events = AuditEvent.objects.for_tenant(app.tenant_id).filter(created_at__gte=since)
    rows = (
        events.filter(app_id=app.app_id, action__in=WRITES + DELETIONS)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "action")
        .annotate(n=Sum("count"))
    )
    for row in rows:
        if row["day"] in by_day:
            _add(by_day[row["day"]], row["action"], row["n"] or 0)
    # A deletion across apps (one person in every app) is one event without an app_id; its share
    # of this app is in its details (a request) or in its job's receipt (a background erasure).
    jobs = {}
    for event in events.filter(app_id="", action__in=DELETIONS).only("created_at", "action", "details"):
        day = by_day.get(timezone.localdate(event.created_at))
        share = (event.details.get("per_app") or {}).get(app.app_id) if isinstance(event.details, dict) else None
        if day is None:
            continue
        if isinstance(share, dict):
            day.deletions += int(share.get("memories") or 0)
        elif isinstance(event.details, dict) and event.details.get("job"):
            jobs[str(event.details["job"])] = day
    if jobs:
        for job in Job.objects.for_tenant(app.tenant_id).filter(pk__in=list(jobs)).only("pk", "receipt"):
            per_app = (job.receipt or {}).get("per_app") or {}
            jobs[str(job.pk)].deletions += int((per_app.get(app.app_id) or {}).get("memories") or 0)
    return list(by_day.values())


def _add(day: Day, action: str, n: int) -> None:
    if action in WRITES:
        day.writes += n
    else:
        day.deletions += n


def activity_chart(days: list[Day]) -> dict:
    """Bar geometry for templates/partials/activity_chart.html: a pair of bars per day on a shared scale."""
    peak = max([1, *(d.writes for d in days), *(d.deletions for d in days)])
    plot = HEIGHT - TOP - BOTTOM

    def bar(n: int, x: float) -> dict:
        h = round(plot * n / peak, 1) if n else 0
        return {"x": round(x, 1), "y": round(TOP + plot - h, 1), "h": h, "w": round(BAR, 1)}

    bars = []
    for i, d in enumerate(days):
        x = i * SLOT + (SLOT - 2 * BAR) / 2
        bars.append({"day": d, "write": bar(d.writes, x), "delete": bar(d.deletions, x + BAR)})
    ticks = []
    for i, d in enumerate(days):
        if i % 7 == (len(days) - 1) % 7:  # a label a week, ending on today
            x = i * SLOT + SLOT / 2
            anchor = "end" if x > WIDTH - 40 else "start" if x < 40 else "middle"  # never cut at the edges
            x = {"end": WIDTH, "start": 0}.get(anchor, round(x, 1))
            ticks.append({"x": x, "anchor": anchor, "label": f"{d.day:%b} {d.day.day}"})
    return {
        "bars": bars,
        "ticks": ticks,
        "peak": peak,
        "width": WIDTH,
        "height": HEIGHT,
        "baseline": HEIGHT - BOTTOM,
        "label_y": HEIGHT - 5,
        "writes": sum(d.writes for d in days),
        "deletions": sum(d.deletions for d in days),
        "days": len(days),
        "rows": [d for d in reversed(days) if d.writes or d.deletions],
    }
