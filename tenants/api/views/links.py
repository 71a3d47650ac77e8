""" "Your data" links an app server issues for its end users."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from tenants.api import serializers as s
from tenants.api.auth import request_scope
from tenants.api.views.common import ERRORS, validated
from tenants.links import data_link_issue

# --- end-user links -------------------------------------------------------------------


@extend_schema(
    operation_id="data_links_create",
    summary="Issue a signed 'your data' link for one end user",
    request=s.DataLinkRequestSerializer,
    responses={201: s.DataLinkSerializer, **ERRORS},
)
@api_view(["POST"])
def data_link_create(request) -> Response:
    data = validated(s.DataLinkRequestSerializer, request.data)
    link, path = data_link_issue(
        scope=request_scope(request), user_id=data["user_id"], ttl=timedelta(seconds=data["ttl"])
    )
    return Response({"id": link.pk, "url": request.build_absolute_uri(path), "expires_at": link.expires_at}, status=201)
