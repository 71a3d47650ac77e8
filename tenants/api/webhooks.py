"""Mem0's webhook endpoints, as mem0.MemoryClient (2.2) calls them: get_webhooks / create_webhook under
``api/v1/webhooks/projects/{project_id}/``, update_webhook / delete_webhook under ``api/v1/webhooks/{id}/``.

A Mem0 "project" is the tenant: ``project_id`` is the tenant's slug, what GET /v1/ping/ answers and the client
keeps as ``client.project_id``. Any other project_id is 404, like a project that does not exist.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from memadmin.memory.errors import NotFound, ValidationError
from tenants.api.auth import key_app_pks, request_scope
from tenants.api.views.common import ERRORS
from tenants.webhooks import services
from tenants.webhooks.models import Webhook

EVENT_CHOICES = list(Webhook.Event.values)


class WebhookRequestSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    url = serializers.CharField(max_length=2000, help_text="https:// (http:// only to networks the operator allows).")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(EVENT_CHOICES), min_length=1, help_text="memory:add-style names are accepted too."
    )
    include_text = serializers.BooleanField(
        required=False, default=False, help_text="memadmin: add the memory text to memory_add/update events."
    )
    is_active = serializers.BooleanField(required=False, help_text="memadmin, update only: true re-enables.")


class WebhookSerializer(serializers.Serializer):
    webhook_id = serializers.CharField()
    name = serializers.CharField()
    url = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()
    project = serializers.CharField(help_text="The tenant's slug.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    include_text = serializers.BooleanField()
    apps = serializers.ListField(child=serializers.CharField(), help_text="Empty: every app of the tenant.")
    disabled_reason = serializers.CharField(allow_null=True)


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="The signing secret, shown this once.")


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField()


def webhook_data(webhook: Webhook) -> dict:
    return {
        "webhook_id": str(webhook.pk),
        "name": webhook.name,
        "url": webhook.url,
        "event_types": webhook.event_types,
        "is_active": webhook.is_active,
        "project": webhook.tenant.slug,
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
        "include_text": webhook.include_text,
        "apps": sorted(app.app_id for app in webhook.apps.all()),
        "disabled_reason": webhook.disabled_reason or None,
    }


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationError("The body must be a JSON object.")
    return request.data


PROJECT_ID = OpenApiParameter("project_id", str, OpenApiParameter.PATH, description="The tenant's slug.")
WEBHOOK_ID = OpenApiParameter("webhook_id", int, OpenApiParameter.PATH)


@extend_schema(
    methods=["GET"],
    operation_id="webhooks_list",
    parameters=[PROJECT_ID],
    summary="The project's (tenant's) webhooks",
    responses={200: WebhookSerializer(many=True), **ERRORS},
)
@extend_schema(
    methods=["POST"],
    operation_id="webhooks_create",
    parameters=[PROJECT_ID],
    summary="Create a webhook; the answer holds its signing secret, once",
    request=WebhookRequestSerializer,
    responses={201: WebhookCreatedSerializer, **ERRORS},
)
@api_view(["GET", "POST"])
def webhook_collection(request, project_id: str) -> Response:
    scope = request_scope(request)
    if project_id != scope.tenant_slug:
        raise NotFound("Project not found: memadmin's project_id is the tenant's slug (client.project_id).")
    within = key_app_pks(request)
    if request.method == "GET":
        return Response([webhook_data(w) for w in services.webhook_list(scope=scope, within_apps=within)])
    data = _body(request)
    webhook = services.webhook_create(
        scope=scope,
        name=data.get("name"),
        url=data.get("url"),
        event_types=data.get("event_types"),
        include_text=data.get("include_text", False),
        within_apps=within,
    )
    return Response({**webhook_data(webhook), "secret": webhook.secret}, status=201)


@extend_schema(
    methods=["PUT"],
    operation_id="webhooks_update",
    parameters=[WEBHOOK_ID],
    summary="Change a webhook's name, url, event types (and memadmin's include_text, is_active)",
    request=WebhookRequestSerializer(partial=True),
    responses={200: MessageSerializer, **ERRORS},
)
@extend_schema(
    methods=["DELETE"],
    operation_id="webhooks_delete",
    parameters=[WEBHOOK_ID],
    request=None,
    summary="Delete a webhook (its pending deliveries go with it)",
    responses={200: MessageSerializer, **ERRORS},
)
@api_view(["PUT", "DELETE"])
def webhook_detail(request, webhook_id: int) -> Response:
    scope = request_scope(request)
    webhook = services.webhook_get(scope=scope, webhook_id=webhook_id, within_apps=key_app_pks(request))
    if request.method == "DELETE":
        services.webhook_delete(scope=scope, webhook=webhook)
        return Response({"message": "Webhook deleted successfully"})
    data = _body(request)
    services.webhook_update(
        scope=scope,
        webhook=webhook,
        name=data.get("name"),
        url=data.get("url"),
        event_types=data.get("event_types"),
        include_text=data.get("include_text"),
        is_active=data.get("is_active"),
        within_apps=key_app_pks(request),
    )
    return Response({"message": "Webhook updated successfully"})
