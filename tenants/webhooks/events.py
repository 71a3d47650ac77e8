"""Events come from the audit trail: the memory service writes an AuditEvent wherever data changes (it imports
nothing from tenants), and this module turns the new rows into webhook deliveries.

The deliveries are written in the audit row's own transaction (an outbox: an event whose change rolled back is
never sent, one that committed is never lost) and enqueued once it commits.

Which audit actions make which events:

| audit action | events |
|---|---|
| ``memory.add`` | ``memory_add``, one per memory |
| ``memory.update``, ``memory.edit`` (a person edited a memory on its page) | ``memory_update`` |
| ``memory.delete`` | ``memory_delete`` (one memory) |
| ``memory.delete_matching`` (by filter, in the request) | ``memory_delete`` with counts per app; plus
  ``user.erased`` when the filter was exactly one user_id and the deletion was verified |
| ``user.erase`` (an erasure job finished) | the same two, with the job's receipt |
| ``retention.apply`` | ``memory_delete`` (reason ``retention``) |
| ``app.offboard`` (an offboarding finished) | ``app.offboarded`` with the receipt |
| ``app.pause``, ``app.resume`` (an admin paused or resumed an app's API writes) | ``app.paused``, ``app.resumed`` |

Memories written straight into Valkey by Mem0 OSS agents bypass the service and make no event.
"""

from __future__ import annotations

import copy
import uuid

from django.db import transaction
from django.utils import timezone

from memadmin.memory.filters import filter_from_fields, node_from_data, render
from memadmin.memory.models import AuditEvent
from tenants.jobs.models import Job
from tenants.webhooks.delivery import deliveries_enqueue
from tenants.webhooks.models import Webhook, WebhookDelivery

MEM0_EVENTS = {"memory_add": "ADD", "memory_update": "UPDATE", "memory_delete": "DELETE"}
HANDLED = frozenset(
    {
        "memory.add",
        "memory.update",
        "memory.edit",
        "memory.delete",
        "memory.delete_matching",
        "user.erase",
        "retention.apply",
        "app.offboard",
        "app.pause",
        "app.resume",
    }
)
COUNT_FIELDS = ("memories", "history_rows", "messages", "remaining")
PAUSES = {"app.pause": "app.paused", "app.resume": "app.resumed"}


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def envelope(
    *,
    event_type: str,
    tenant_slug: str,
    app_id: str | None,
    data: dict,
    event_id: str | None = None,
    memory_id: str | None = None,
) -> dict:
    """Every payload's outer shape. ``event_details`` is Mem0's (one memory's id and ADD/UPDATE/DELETE), for
    receivers written against the Mem0 platform."""
    payload = {
        "id": event_id or new_event_id(),
        "type": event_type,
        "created_at": timezone.now().isoformat(),
        "project_id": tenant_slug,
        "app_id": app_id or None,
        "data": data,
    }
    if memory_id is not None:
        payload["event_details"] = {"id": memory_id, "event": MEM0_EVENTS[event_type]}
    return payload


# --- audit row -> events -------------------------------------------------------------------------


def _per_memory(audit: AuditEvent, event_type: str) -> list[tuple[str, set[str], dict, str]]:
    return [
        (
            event_type,
            {audit.app_id},
            {"memory_id": memory_id, "user_id": audit.user_id or None, "actor": audit.actor},
            memory_id,
        )
        for memory_id in audit.memory_ids
    ]


def _counts(per_app: dict) -> dict:
    return {app_id: {k: int(line.get(k) or 0) for k in COUNT_FIELDS} for app_id, line in (per_app or {}).items()}


def _only_user(tree, user_id: str | None) -> bool:
    """The deletion named exactly one end user and nothing else: that is an erasure of the person."""
    return bool(user_id) and render(tree) == render(filter_from_fields(user_id=user_id))


def _deletion(
    audit: AuditEvent,
    *,
    per_app: dict,
    exact_user: bool,
    verified: bool,
    reason: str,
    receipt: dict | None = None,
    job: str | None = None,
) -> list:
    counts = _counts(per_app)
    apps = set(counts)
    data = {
        "count": sum(line["memories"] for line in counts.values()),
        "per_app": counts,
        "user_id": audit.user_id or None,
        "reason": reason,
        "actor": audit.actor,
        "job_id": job,
    }
    events = [("memory_delete", apps, data, None)]
    if exact_user and verified:
        erased = {
            "user_id": audit.user_id,
            "count": data["count"],
            "per_app": counts,
            "actor": audit.actor,
            "job_id": job,
            "receipt": receipt,
        }
        events.append(("user.erased", apps, erased, None))
    return events


def events_for(audit: AuditEvent) -> list[tuple[str, set[str], dict, str | None]]:
    """(event type, the apps it concerns, data, memory id of a one-memory event) for one audit row."""
    action, details = audit.action, audit.details or {}
    if action == "memory.add":
        return _per_memory(audit, "memory_add")
    if action in ("memory.update", "memory.edit"):
        return _per_memory(audit, "memory_update")
    if action in PAUSES:
        data = {"app_id": audit.app_id, "actor": audit.actor, **details}
        return [(PAUSES[action], {audit.app_id}, data, None)]
    if action == "memory.delete":
        return _per_memory(audit, "memory_delete")
    if action == "memory.delete_matching":
        exact = bool(audit.user_id) and details.get("filter") == render(filter_from_fields(user_id=audit.user_id))
        return _deletion(
            audit,
            per_app=details.get("per_app"),
            exact_user=exact,
            verified=not details.get("deferred") and not details.get("remaining"),
            reason="request",
        )
    job = Job.objects.filter(pk=details.get("job"), tenant_id=audit.tenant_id).first() if details.get("job") else None
    if job is None or not job.receipt:
        return []
    receipt = job.receipt
    if action == "user.erase":
        filters = job.params.get("filters")
        exact = _only_user(node_from_data(filters), job.params.get("user_id")) if filters else bool(audit.user_id)
        return _deletion(
            audit,
            per_app=receipt.get("per_app"),
            exact_user=exact,
            verified=not receipt["remaining"],
            reason="erasure",
            receipt=receipt,
            job=str(job.pk),
        )
    if action == "retention.apply":
        return _deletion(
            audit, per_app=receipt.get("per_app"), exact_user=False, verified=False, reason="retention", job=str(job.pk)
        )
    if action == "app.offboard":
        counts = _counts(receipt.get("per_app"))
        data = {
            "app_id": audit.app_id,
            "count": receipt["totals"]["memories"],
            "per_app": counts,
            "actor": audit.actor,
            "job_id": str(job.pk),
            "receipt": receipt,
        }
        return [("app.offboarded", {audit.app_id}, data, None)]
    return []


# --- a webhook bound to some apps sees only those ---------------------------------------------


def _narrow(data: dict, bound: set[str]) -> dict:
    """The event as a webhook bound to ``bound`` may see it: the other apps' lines and counts left out."""
    data = copy.deepcopy(data)
    if "per_app" in data:
        data["per_app"] = {a: line for a, line in data["per_app"].items() if a in bound}
        data["count"] = sum(line["memories"] for line in data["per_app"].values())
    receipt = data.get("receipt")
    if receipt:
        receipt["per_app"] = {a: line for a, line in (receipt.get("per_app") or {}).items() if a in bound}
        receipt.setdefault("scope", {})["apps"] = [a for a in receipt.get("scope", {}).get("apps", []) if a in bound]
        receipt["totals"] = {
            k: sum(int(line.get(k) or 0) for line in receipt["per_app"].values()) for k in COUNT_FIELDS
        }
        receipt["remaining"] = receipt["totals"]["remaining"]
    return data


def _bound_apps(webhook: Webhook) -> set[str]:
    return {app.app_id for app in webhook.apps.all()}


def deliveries_for(audit: AuditEvent) -> list[WebhookDelivery]:
    """Create the deliveries one audit row calls for (none when no active webhook of its tenant listens)."""
    if audit.action not in HANDLED:
        return []
    active = Webhook.objects.for_tenant(audit.tenant_id).filter(is_active=True)
    if not active.exists():  # most tenants, most writes: the cheapest query that can say so (~0.14 ms)
        return []
    webhooks = list(active.prefetch_related("apps"))
    events = events_for(audit)
    slug = audit.tenant.slug
    created = []
    for event_type, apps, data, memory_id in events:
        event_id = new_event_id()
        for webhook in webhooks:
            if event_type not in webhook.event_types:
                continue
            bound = _bound_apps(webhook)
            if bound and not apps & bound:
                continue
            payload = envelope(
                event_type=event_type,
                tenant_slug=slug,
                app_id=audit.app_id or None,
                event_id=event_id,
                data=_narrow(data, bound) if bound else data,
                memory_id=memory_id,
            )
            created.append(WebhookDelivery(webhook=webhook, event_id=event_id, event_type=event_type, payload=payload))
    # One INSERT for all of them: an add of 100 messages is 100 events per listening webhook.
    return WebhookDelivery.objects.bulk_create(created) if created else []


def on_audit_event(sender, instance: AuditEvent, created: bool, raw: bool = False, **kwargs) -> None:
    """post_save of AuditEvent (connected in tenants.apps)."""
    if not created or raw or instance.action not in HANDLED:
        return
    deliveries = deliveries_for(instance)
    if deliveries:
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: deliveries_enqueue(ids))
