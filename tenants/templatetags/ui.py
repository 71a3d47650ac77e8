"""The dashboard's few template tags: one way to show a time, and a copy button for ids.

{% load ui %}
{% when job.created_at %}           -> <time datetime="2026-12-06T14:09:24+00:00"
                                       title="2026-12-06 14:09:24 UTC">3 minutes ago</time>
{% when receipt.verified_at exact=True %}   the exact time as the text (receipts, proofs)
{% copy memory.id "memory id" %}    -> a button that copies the id (static/memadmin/app.js)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

from tenants.webhooks.models import Webhook

register = template.Library()

EXACT = "Y-m-d H:i:s T"  # 2026-12-06 14:09:24 UTC, in the display time zone (TIME_ZONE)
JUST_NOW = timedelta(minutes=1)  # timesince says "0 minutes" below that


def _as_datetime(value) -> datetime | None:
    """Datetimes, and the ISO strings receipts and health records carry; naive ones are UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt_timezone.utc)
    return timezone.localtime(value)


def exact_time(value) -> str:
    moment = _as_datetime(value)
    return date_format(moment, EXACT) if moment else ""


def relative_time(moment: datetime, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if abs(now - moment) < JUST_NOW:
        return "just now"
    if moment > now:
        return f"in {_until(moment - now) or timeuntil(moment, now, depth=1)}"
    return f"{timesince(moment, now, depth=1)} ago"


def _until(delta: timedelta) -> str | None:
    """A time ahead rounded to the nearest unit: timeuntil truncates, so a 7-day link read a second after it was
    issued said "in 6 days". Past two months, timeuntil's months and years are near enough."""
    minutes = delta.total_seconds() / 60
    for unit, size, limit in (("minute", 1, 60), ("hour", 60, 48 * 60), ("day", 24 * 60, 60 * 24 * 60)):
        if minutes < limit - size / 2:
            n = max(1, round(minutes / size))
            return f"{n}\xa0{unit}{'' if n == 1 else 's'}"  # a no-break space, as timesince writes it
    return None


@register.simple_tag
def when(value, exact: bool = False, default: str = "—"):
    moment = _as_datetime(value)
    if moment is None:
        return format_html('<span class="muted">{}</span>', default)
    text = date_format(moment, EXACT) if exact else relative_time(moment)
    stamp = moment.isoformat(timespec="seconds")
    return format_html('<time datetime="{}" title="{}">{}</time>', stamp, date_format(moment, EXACT), text)


@register.filter
def exact(value) -> str:
    """The exact time as plain text (e-mails, attributes)."""
    return exact_time(value)


@register.simple_tag
def copy(value, what: str = "id"):
    return format_html(
        '<button type="button" class="copy-btn" data-copy-text="{}" aria-label="Copy {} {}" title="Copy {}">'
        "Copy</button>",
        value,
        what,
        value,
        what,
    )


@register.filter
def plain(value: str) -> str:
    """An internal id as words for end users: travel_planner -> Travel planner."""
    words = str(value or "").replace("_", " ").replace("-", " ").split()
    return " ".join(words).capitalize() if words else ""


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def any_updated(memories) -> bool:
    """Whether any memory of a table was changed after it was written: its Updated column is then kept on
    narrower screens (where it otherwise gives way to the text)."""
    for m in memories or ():
        updated, created = getattr(m, "updated_at", None), getattr(m, "created_at", None)
        if updated and (created is None or updated > created):
            return True
    return False


# Webhook event codes keep Mem0's names (memory_add) beside memadmin's own (user.erased): receivers match on
# them. People read words; the code stays in the title.
EVENT_WORDS = {**dict(Webhook.Event.choices), "webhook.test": "Test event"}


@register.filter
def event_words(code) -> str:
    return EVENT_WORDS.get(str(code), str(code))
