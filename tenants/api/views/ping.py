"""GET /v1/ping/: what MemoryClient asks first (the key's tenant and, for an app server, its defaults)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from tenants.api import serializers as s
from tenants.api.auth import request_scope
from tenants.api.views.common import ERRORS

# --- ping ---------------------------------------------------------------------------


@extend_schema(
    operation_id="ping",
    summary="Check a key; the client reads org_id / project_id here when it starts",
    responses={200: s.PingSerializer, **ERRORS},
)
@api_view(["GET"])
def ping(request) -> Response:
    scope = request_scope(request)
    email = getattr(request.user, "email", None) or None
    return Response(
        {
            "status": "ok",
            "org_id": scope.tenant_slug,
            "project_id": scope.tenant_slug,
            "user_email": email,
            "tenant": scope.tenant_slug,
            "principal": scope.actor,
            "role": scope.role,
            "apps": [app.app_id for app in scope.apps],
        }
    )
