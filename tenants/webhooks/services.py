"""Webhooks of a tenant: create, change, delete, rotate the secret, send a test event. Tenant admins (dashboard)
and API keys (mem0.MemoryClient's create_webhook & co.) hold the ``manage_webhooks`` capability.

A key restricted to some apps makes webhooks bound to those apps (it would otherwise hear about apps it
cannot read), and sees, changes and deletes only webhooks bound within them: ``within_apps`` is that key's
app pks (tenants.api.auth.key_app_pks), None for everyone else.
"""

from __future__ import annotations

import base64
import secrets

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from memadmin.memory.capabilities import MANAGE_WEBHOOKS
from memadmin.memory.errors import NotFound, ValidationError
from memadmin.memory.ids import clean_app_id
from memadmin.memory.scope import Scope
from memadmin.memory.services import audit_record
from tenants.models import App
from tenants.webhooks.delivery import AttemptFailed, attempt
from tenants.webhooks.events import envelope, new_event_id
from tenants.webhooks.models import Webhook, WebhookDelivery
from tenants.webhooks.targets import target_check

EVENTS = tuple(Webhook.Event.values)
# The Mem0 docs spell the same events both ways.
ALIASES = {"memory:add": "memory_add", "memory:update": "memory_update", "memory:delete": "memory_delete"}
UNAVAILABLE = {
    "memory_categorize": "memadmin does not categorize memories (the platform's categories need its LLM)",
    "memory:categorize": "memadmin does not categorize memories (the platform's categories need its LLM)",
}
MAX_NAME = 100
MAX_WEBHOOKS = 50  # per tenant: each one multiplies every event


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def clean_event_types(value) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > 20:
        raise ValidationError(f"event_types must be a list of 1 or more of: {', '.join(EVENTS)}.", field="event_types")
    chosen = []
    for item in value:
        if not isinstance(item, str):
            raise ValidationError("event_types must hold strings.", field="event_types")
        if item in UNAVAILABLE:
            raise ValidationError(f"{item}: {UNAVAILABLE[item]}.", field="event_types")
        name = ALIASES.get(item, item)
        if name not in EVENTS:
            raise ValidationError(
                f"Unknown event type {item[:40]!r}; choose from {', '.join(EVENTS)}.", field="event_types"
            )
        if name not in chosen:
            chosen.append(name)
    return [e for e in EVENTS if e in chosen]


def clean_name(value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_NAME:
        raise ValidationError(f"name must be 1 to {MAX_NAME} characters.", field="name")
    value = value.strip()
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValidationError("name contains control characters.", field="name")
    return value


def _apps(scope: Scope, app_ids, within_apps: list[int] | None) -> list[App]:
    if within_apps is not None:
        return list(App.objects.filter(pk__in=within_apps, tenant_id=scope.tenant_id))
    if not app_ids:
        return []
    if isinstance(app_ids, str) or not isinstance(app_ids, list):
        raise ValidationError("apps must be a list of app_ids.", field="apps")
    wanted = {clean_app_id(a) for a in app_ids}
    apps = [
        app
        for app in App.objects.filter(tenant_id=scope.tenant_id, app_id__in=wanted)
        if app.status != App.Status.OFFBOARDED
    ]
    missing = sorted(wanted - {a.app_id for a in apps})
    if missing:
        raise ValidationError(f"This tenant has no active app {', '.join(missing)}.", field="apps")
    return apps


# --- selectors -------------------------------------------------------------------------------


def webhook_list(*, scope: Scope, within_apps: list[int] | None = None) -> QuerySet[Webhook]:
    scope.require(MANAGE_WEBHOOKS)
    hooks = Webhook.objects.for_tenant(scope.tenant_id).prefetch_related("apps")
    if within_apps is not None:
        outside = App.objects.filter(tenant_id=scope.tenant_id).exclude(pk__in=within_apps)
        hooks = hooks.filter(apps__isnull=False).exclude(apps__in=outside).distinct()
    return hooks


def webhook_get(*, scope: Scope, webhook_id, within_apps: list[int] | None = None) -> Webhook:
    """The one scoped fetch: another tenant's webhook (or one outside a restricted key's apps) is 404."""
    try:
        pk = int(webhook_id)
    except (TypeError, ValueError):
        raise NotFound("Webhook not found.") from None
    webhook = webhook_list(scope=scope, within_apps=within_apps).filter(pk=pk).first()
    if webhook is None:
        raise NotFound("Webhook not found.")
    return webhook


def webhook_deliveries(*, webhook: Webhook, limit: int = 50) -> list[WebhookDelivery]:
    return list(webhook.deliveries.order_by("-created_at")[:limit])


# --- services --------------------------------------------------------------------------------


def _audit(scope: Scope, webhook: Webhook, action: str, **details) -> None:
    audit_record(scope=scope, action=action, details={"webhook": webhook.pk, "name": webhook.name, **details})


def webhook_create(
    *,
    scope: Scope,
    name,
    url,
    event_types,
    include_text: bool = False,
    app_ids=None,
    within_apps: list[int] | None = None,
) -> Webhook:
    """The new webhook; its ``secret`` is readable on the returned object, to be shown once."""
    scope.require(MANAGE_WEBHOOKS)
    name, url, event_types = clean_name(name), target_check(url), clean_event_types(event_types)
    if not isinstance(include_text, bool):
        raise ValidationError("include_text must be true or false.", field="include_text")
    apps = _apps(scope, app_ids, within_apps)
    if Webhook.objects.for_tenant(scope.tenant_id).count() >= MAX_WEBHOOKS:
        raise ValidationError(f"A tenant can have at most {MAX_WEBHOOKS} webhooks.")
    with transaction.atomic():
        webhook = Webhook.objects.create(
            tenant_id=scope.tenant_id,
            name=name,
            url=url,
            event_types=event_types,
            include_text=include_text,
            secret=new_secret(),
            created_by=scope.actor,
        )
        webhook.apps.set(apps)
        _audit(
            scope,
            webhook,
            "webhook.create",
            url=url,
            event_types=event_types,
            include_text=include_text,
            apps=[a.app_id for a in apps],
        )
    return webhook


def webhook_update(
    *,
    scope: Scope,
    webhook: Webhook,
    name=None,
    url=None,
    event_types=None,
    include_text=None,
    is_active=None,
    app_ids=None,
    within_apps: list[int] | None = None,
) -> Webhook:
    """Changes what is given. Turning a disabled webhook on again clears its failure count."""
    scope.require(MANAGE_WEBHOOKS)
    changed = {}
    if name is not None:
        webhook.name = changed["name"] = clean_name(name)
    if url is not None:
        webhook.url = changed["url"] = target_check(url)
    if event_types is not None:
        webhook.event_types = changed["event_types"] = clean_event_types(event_types)
    for field, value in (("include_text", include_text), ("is_active", is_active)):
        if value is not None:
            if not isinstance(value, bool):
                raise ValidationError(f"{field} must be true or false.", field=field)
            setattr(webhook, field, value)
            changed[field] = value
    apps = None
    if app_ids is not None and within_apps is None:
        apps = _apps(scope, app_ids, None)
        changed["apps"] = [a.app_id for a in apps]
    if is_active:
        webhook.failed_deliveries, webhook.backoff_until = 0, None
        webhook.disabled_at, webhook.disabled_reason = None, ""
    with transaction.atomic():
        webhook.save()
        if apps is not None:
            webhook.apps.set(apps)
        if is_active is False:
            webhook.deliveries.filter(state=WebhookDelivery.State.PENDING).update(
                state=WebhookDelivery.State.CANCELLED, finished_at=timezone.now(), last_error="webhook turned off"
            )
        _audit(scope, webhook, "webhook.update", **changed)
    return webhook


def webhook_delete(*, scope: Scope, webhook: Webhook) -> None:
    scope.require(MANAGE_WEBHOOKS)
    with transaction.atomic():
        _audit(scope, webhook, "webhook.delete", url=webhook.url)
        webhook.delete()


def webhook_rotate_secret(*, scope: Scope, webhook: Webhook) -> str:
    """A new signing secret, effective for the next delivery; returned to be shown once."""
    scope.require(MANAGE_WEBHOOKS)
    webhook.secret = new_secret()
    webhook.save(update_fields=["secret", "updated_at"])
    _audit(scope, webhook, "webhook.rotate_secret")
    return webhook.secret


def webhook_send_test(*, scope: Scope, webhook: Webhook) -> WebhookDelivery:
    """One ``webhook.test`` event, sent now from the request (the admin waits for the answer, at most
    MEMADMIN_WEBHOOK_TIMEOUT_SECONDS); logged like any delivery, never retried, and not counted toward
    auto-disable. Works on a disabled webhook too: that is how its receiver is checked before enabling it."""
    scope.require(MANAGE_WEBHOOKS)
    event_id = new_event_id()
    payload = envelope(
        event_type="webhook.test",
        tenant_slug=scope.tenant_slug,
        app_id=None,
        event_id=event_id,
        data={"webhook_id": str(webhook.pk), "name": webhook.name, "actor": scope.actor},
    )
    delivery = WebhookDelivery.objects.create(
        webhook=webhook,
        event_id=event_id,
        event_type="webhook.test",
        payload=payload,
        is_test=True,
        lease_until=timezone.now(),
    )
    try:
        status, latency = attempt(delivery)
        state, error = WebhookDelivery.State.SUCCEEDED, ""
    except AttemptFailed as failure:
        status, latency, error = failure.status, failure.latency_ms, failure.message
        state = WebhookDelivery.State.FAILED
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        state=state,
        attempts=1,
        last_status=status,
        latency_ms=latency,
        last_error=error,
        finished_at=timezone.now(),
        lease_until=None,
    )
    delivery.refresh_from_db()
    _audit(scope, webhook, "webhook.test", state=state, status=status)
    return delivery
