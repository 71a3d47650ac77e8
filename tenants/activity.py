"""An app's writes and deletions per day, from the audit trail, drawn as a small inline SVG bar chart.

The audit trail, not the store: deletions leave nothing in Valkey or in Mem0's history (erasure removes
both), and only the trail knows them. It holds every write made through memadmin (API, seed) and every
deletion of any kind; writes an agent makes with Mem0 OSS straight into Valkey are not in it.
The cost follows the window, not the app: one GROUP BY day over the app's events of the last days
(indexed by created_at), plus the few deletions that spanned several apps, read one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from memadmin.memory.models import AuditEvent
from tenants.models import App, Job

WRITES = ("memory.add", "memory.update")
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
