"""What a person sees under "Who looked at your data": every staff, API and automated action that showed,
exported, sent or deleted their memories, grouped per day, actor and action for reading.

Two indexed sources, read separately and merged here:

* audit rows whose ``user_id`` column is the person (their own page, one memory, an erasure): the
  (user_id) index;
* rows that named many people (a page of the memory browser or the overview, a search across users, a
  whole-app export, an offboarding, a retention sweep, an export-file download): one AuditSubject row per
  person, read through its (tenant, user_id) index.

Each query returns at most ACCESS_GROUPS groups, so the page costs two index range reads plus a grouping of
that person's rows; nothing here reads other people's rows.
"""

from __future__ import annotations

from django.db.models import Count, F, Max, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDate

from memadmin.memory.models import AuditEvent, AuditSubject

# Who acted: staff, API keys, and the system (jobs acting for someone, webhooks). The person's own
# actions (actor_kind "enduser") are not accesses by someone else.
TRANSPARENCY_KINDS = ("staff", "api", "system")
ACCESS_GROUPS = 50  # groups shown; the page says how many accesses the older groups hold
ROLE_WORDS = {"admin": "An admin", "support": "Support staff", "viewer": "A viewer"}
PLAIN_ACTIONS = {
    "memory.list": "viewed your memories",
    "memory.search": "searched your memories",
    "memory.get": "opened one of your memories",
    "memory.export": "exported your memories",
    "memory.add": "stored a memory",
    "memory.update": "changed a memory",
    "memory.edit": "corrected a memory",
    "memory.delete": "deleted a memory",
    "memory.delete_matching": "deleted your memories",
    "user.erase_requested": "asked for your memories to be deleted",
    "user.erase": "deleted your memories",
    "app.offboard": "deleted your memories when an app was closed down (offboarded)",
    "retention.apply": "deleted old memories of yours under the retention policy",
    "export.download": "downloaded an export file holding your memories",
    "export.downloaded": "downloaded an export file holding your memories",
    "export.completed": "exported your memories to a file",
    "webhook.text_sent": "sent the text of your memories to its receiver",
    "link.issue": "sent you a link to this page",
    "link.revoke": "withdrew a link to this page",
}
# Actions that name how many of the person's memories they showed, said when known.
COUNTED = {
    "memory.list": "listed {n} of your memories",
    "memory.search": "found {n} of your memories in a search",
    "memory.export": "exported {n} of your memories",
    "export.download": "downloaded an export file holding {n} of your memories",
    "export.downloaded": "downloaded an export file holding {n} of your memories",
    "webhook.text_sent": "sent the text of {n} of your memories to its receiver",
}
PLACES = {"memory browser": "on the memory browser", "overview": "on the overview"}
GROUP = ("day", "actor", "actor_kind", "role", "action", "place")


def person_accesses(*, tenant, user_id: str) -> dict:
    """{"accesses": newest groups first, "access_total": every access, "access_shown": accesses in the groups}."""
    own = AuditEvent.objects.for_tenant(tenant).filter(user_id=user_id, actor_kind__in=TRANSPARENCY_KINDS)
    named = AuditSubject.objects.for_tenant(tenant).filter(user_id=user_id, event__actor_kind__in=TRANSPARENCY_KINDS)
    direct = (
        own.annotate(day=TruncDate("created_at"), place=KeyTextTransform("place", "details"))
        .values(*GROUP)
        .annotate(times=Count("id"), memories=Sum("count"), last=Max("created_at"))
        .order_by("-last")[:ACCESS_GROUPS]
    )
    through = (
        named.annotate(
            day=TruncDate("event__created_at"),
            actor=F("event__actor"),
            actor_kind=F("event__actor_kind"),
            role=F("event__role"),
            action=F("event__action"),
            place=KeyTextTransform("place", "event__details"),
        )
        .values(*GROUP)
        .annotate(times=Count("id"), memories=Sum("count"), last=Max("event__created_at"))
        .order_by("-last")[:ACCESS_GROUPS]
    )
    merged: dict[tuple, dict] = {}
    for row in [*direct, *through]:
        key = tuple(row[k] for k in GROUP)
        group = merged.setdefault(key, {**row, "times": 0, "memories": 0})
        group["times"] += row["times"]
        group["memories"] += row["memories"] or 0
        group["last"] = max(group["last"], row["last"])
    groups = sorted(merged.values(), key=lambda g: (g["day"], g["last"]), reverse=True)[:ACCESS_GROUPS]
    for group in groups:
        group["who"] = _who(group)
        group["what"] = _what(group)
    total = own.count() + named.count()
    return {"accesses": groups, "access_total": total, "access_shown": sum(g["times"] for g in groups)}


def _who(group: dict) -> str:
    if group["actor_kind"] == "api":
        return f"An automated system ({group['actor']})"
    if group["actor_kind"] == "system":
        if group["actor"].startswith("webhook:"):
            return f"A webhook ({group['actor'].removeprefix('webhook:')})"
        return f"An automated job requested by {group['actor']}" if group["actor"] else "An automated job"
    return f"{ROLE_WORDS.get(group['role'], 'Staff')} ({group['actor']})"


def _what(group: dict) -> str:
    """ "listed 6 of your memories on the memory browser"; a group of several accesses says the plain action
    (the page adds "3 times") and keeps the number of memories for "(14 memories in all)"."""
    action, n = group["action"], group["memories"]
    if action in COUNTED and n and group["times"] == 1:
        words = COUNTED[action].format(n=n)
    else:
        words = PLAIN_ACTIONS.get(action, action)
    group["in_all"] = n if action in COUNTED and group["times"] > 1 else 0
    place = PLACES.get(group["place"] or "")
    return f"{words} {place}" if place else words
