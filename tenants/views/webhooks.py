"""Webhooks of the tenant, for tenant admins: list and create; one webhook's settings, test event, secret
rotation, deletion, and its delivery log (status, latency, attempts; refreshed while deliveries are pending)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render

from memadmin.memory.errors import ValidationError
from tenants.models import App
from tenants.views.common import TenantRequest, is_fragment, render_error, tenant_view
from tenants.webhooks import services
from tenants.webhooks.models import Webhook, WebhookDelivery

EVENT_CHOICES = Webhook.Event.choices


def _form_values(request: TenantRequest) -> dict:
    return {
        "name": request.POST.get("name", ""),
        "url": request.POST.get("url", ""),
        "event_types": request.POST.getlist("event_types"),
        "include_text": request.POST.get("include_text") == "on",
        "app_ids": [a for a in request.POST.getlist("apps") if a],
    }


def _apps(request: TenantRequest) -> list[App]:
    return list(App.objects.filter(tenant=request.tenant).exclude(status=App.Status.OFFBOARDED).order_by("app_id"))


def _list_page(request: TenantRequest, *, form=None, form_error=None, status=200) -> HttpResponse:
    return render(
        request,
        "tenants/webhooks.html",
        {
            "webhooks": services.webhook_list(scope=request.scope),
            "events": EVENT_CHOICES,
            "apps": _apps(request),
            "form": form or {"event_types": [e for e, _ in EVENT_CHOICES]},
            "form_error": form_error,
        },
        status=status,
    )


def _detail_page(
    request: TenantRequest, webhook: Webhook, *, new_secret=None, form=None, form_error=None, status=200
) -> HttpResponse:
    deliveries = services.webhook_deliveries(webhook=webhook)
    context = {
        "webhook": webhook,
        "deliveries": deliveries,
        "pending": any(d.state == WebhookDelivery.State.PENDING for d in deliveries),
        "bound": [a.app_id for a in webhook.apps.all()],
        "events": EVENT_CHOICES,
        "apps": _apps(request),
        "new_secret": new_secret,
        "values": form
        or {
            "name": webhook.name,
            "url": webhook.url,
            "event_types": webhook.event_types,
            "include_text": webhook.include_text,
            "app_ids": [a.app_id for a in webhook.apps.all()],
        },
        "form_error": form_error,
        "disable_after": settings.MEMADMIN_WEBHOOK_DISABLE_AFTER,
    }
    template = "tenants/webhook.html#log" if is_fragment(request) else "tenants/webhook.html"
    response = render(request, template, context, status=status)
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response


@tenant_view
def webhook_index(request: TenantRequest) -> HttpResponse:
    return _list_page(request)


@tenant_view
def webhook_new(request: TenantRequest) -> HttpResponse:
    values = _form_values(request)
    try:
        webhook = services.webhook_create(scope=request.scope, **values)
    except ValidationError as exc:
        return _list_page(request, form=values, form_error=exc.message, status=400)
    # The secret exists in the clear only in this response (and the database): shown once, never redirected with.
    return _detail_page(request, webhook, new_secret=webhook.secret)


@tenant_view
def webhook_detail(request: TenantRequest, webhook_id: int) -> HttpResponse:
    return _detail_page(request, services.webhook_get(scope=request.scope, webhook_id=webhook_id))


@tenant_view
def webhook_edit(request: TenantRequest, webhook_id: int) -> HttpResponse:
    webhook = services.webhook_get(scope=request.scope, webhook_id=webhook_id)
    values = _form_values(request)
    try:
        services.webhook_update(
            scope=request.scope, webhook=webhook, is_active=request.POST.get("is_active") == "on", **values
        )
    except ValidationError as exc:
        webhook.refresh_from_db()
        return _detail_page(request, webhook, form=values, form_error=exc.message, status=400)
    messages.success(request, f"Webhook {webhook.name} saved.")
    return redirect("webhook", tenant_slug=request.tenant.slug, webhook_id=webhook.pk)


@tenant_view
def webhook_test(request: TenantRequest, webhook_id: int) -> HttpResponse:
    webhook = services.webhook_get(scope=request.scope, webhook_id=webhook_id)
    delivery = services.webhook_send_test(scope=request.scope, webhook=webhook)
    answer = " ".join(
        part
        for part in (
            f"HTTP {delivery.last_status}" if delivery.last_status else "",
            f"in {delivery.latency_ms} ms" if delivery.latency_ms is not None else "",
            f"({delivery.last_error})" if delivery.last_error else "",
        )
        if part
    )
    if delivery.state == WebhookDelivery.State.SUCCEEDED:
        messages.success(request, f"Test event delivered: {answer}.")
    else:
        messages.error(request, f"Test event not delivered: {answer}.")
    return redirect("webhook", tenant_slug=request.tenant.slug, webhook_id=webhook.pk)


@tenant_view
def webhook_rotate(request: TenantRequest, webhook_id: int) -> HttpResponse:
    webhook = services.webhook_get(scope=request.scope, webhook_id=webhook_id)
    if request.POST.get("confirm") != "yes":
        return render_error(request, 400, "Tick the box to confirm: the old secret stops working at once.")
    secret = services.webhook_rotate_secret(scope=request.scope, webhook=webhook)
    return _detail_page(request, webhook, new_secret=secret)


@tenant_view
def webhook_delete(request: TenantRequest, webhook_id: int) -> HttpResponse:
    webhook = services.webhook_get(scope=request.scope, webhook_id=webhook_id)
    if request.POST.get("confirm") != "yes":
        return render_error(request, 400, "Tick the box to confirm the deletion.")
    services.webhook_delete(scope=request.scope, webhook=webhook)
    messages.success(request, f"Webhook {webhook.name} deleted; nothing more is sent to it.")
    return redirect("webhooks", tenant_slug=request.tenant.slug)
