"""Reading the request log: one tenant's rows under the page's filters, newest first, by keyset; and the same
rows counted per day for the chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from tenants.request_log.forms import STATUS_CLASSES, cursor_of
from tenants.request_log.models import APIRequest

PAGE_SIZE = 50


@dataclass(frozen=True)
class RequestFilters:
    key_id: int | None = None
    app_id: str = ""
    status: str = ""
    method: str = ""
    first_day: date | None = None
    last_day: date | None = None


@dataclass
class RequestPage:
    rows: list[APIRequest]
    next_cursor: str | None
    is_first: bool


@dataclass
class Day:
    day: date
    requests: int = 0
    errors: int = 0


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def request_rows(*, tenant, filters: RequestFilters) -> QuerySet[APIRequest]:
    rows = APIRequest.objects.for_tenant(tenant)
    if filters.key_id is not None:
        rows = rows.filter(key_id=filters.key_id)
    if filters.app_id:
        rows = rows.filter(app_id=filters.app_id)
    if filters.status:
        low, high = STATUS_CLASSES[filters.status]
        rows = rows.filter(status__gte=low, status__lte=high)
    if filters.method:
        rows = rows.filter(method=filters.method)
    if filters.first_day:
        rows = rows.filter(created_at__gte=_start_of(filters.first_day))
    if filters.last_day:
        rows = rows.filter(created_at__lt=_start_of(filters.last_day + timedelta(days=1)))
    return rows


def request_page(*, tenant, filters: RequestFilters, after=None, size: int = PAGE_SIZE) -> RequestPage:
    """A page newest first; ``after`` = (created_at, id) of the last row shown: each page costs what the first
    does, at any depth."""
    rows = request_rows(tenant=tenant, filters=filters).order_by("-created_at", "-id")
    if after is not None:
        moment, row_id = after
        rows = rows.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=row_id))
    found = list(rows[: size + 1])
    more = len(found) > size
    found = found[:size]
    return RequestPage(rows=found, next_cursor=cursor_of(found[-1]) if more else None, is_first=after is None)


def requests_per_day(*, tenant, filters: RequestFilters) -> list[Day]:
    """Requests and errors (status 400 and up) per day from first_day to last_day, oldest first."""
    first, last = filters.first_day, filters.last_day
    days = {first + timedelta(days=n): Day(first + timedelta(days=n)) for n in range((last - first).days + 1)}
    counted = (
        request_rows(tenant=tenant, filters=filters)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .order_by()
        .values("day")
        .annotate(requests=Count("id"), errors=Count("id", filter=Q(status__gte=400)))
    )
    for row in counted:
        if row["day"] in days:
            days[row["day"]].requests, days[row["day"]].errors = row["requests"], row["errors"]
    return list(days.values())
