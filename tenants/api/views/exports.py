"""Exports: create one (its id is a signed token of the filters) and stream it back, as the platform does."""

from __future__ import annotations

import json
from itertools import chain

from django.core import signing
from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from memadmin.memory import capabilities as cap
from memadmin.memory import selectors
from memadmin.memory.errors import NotFound, ValidationError
from memadmin.memory.filters import ID_FIELDS, filter_from_mem0, needs_post_filter, pinned_value
from memadmin.memory.scope import Scope
from tenants.api import serializers as s
from tenants.api.app_targets import check_filter_apps
from tenants.api.auth import request_scope
from tenants.api.views.common import (
    EXPORT_MAX_AGE,
    EXPORT_SALT,
    READ_ERRORS,
    require_filters,
    validated,
)
from tenants.export_formats import ending_visibly, json_array

# --- exports ------------------------------------------------------------------------


def _export_filters(data: dict) -> dict:
    """One Filters v2 object from `filters` and plain ids, as stored in the export id."""
    parts = [data["filters"]] if data.get("filters") else []
    parts += [{name: data[name]} for name in ID_FIELDS if data.get(name)]
    return {"AND": parts} if parts else {}


def _export_response(scope: Scope, raw_filters: dict, export_id: str | None) -> StreamingHttpResponse:
    tree = filter_from_mem0(raw_filters)
    require_filters(tree, "An export")
    check_filter_apps(scope, tree)
    items = selectors.memory_export(scope=scope, filters=tree)
    first = next(items, None)  # permission and store errors surface here, as a normal error response

    def body():
        count = 0

        def counted():
            nonlocal count
            for item in chain([first], items) if first is not None else ():
                count += 1
                yield item

        head = f'{{"id": {json.dumps(export_id)}, "status": "completed", "results": ['
        yield from json_array(counted(), open_=head, sep=",", close="")
        yield f'], "count": {count}}}'

    what = f"api export {export_id or 'by filters'}"[:200]
    return StreamingHttpResponse(ending_visibly(body(), scope=scope, what=what), content_type="application/json")


@extend_schema(
    operation_id="exports_create",
    summary="Create a memory export (its id replays the filters; produced when fetched)",
    request=s.ExportCreateSerializer,
    responses={201: s.ExportCreatedSerializer, **READ_ERRORS},
)
@api_view(["POST"])
def export_create(request) -> Response:
    data = validated(s.ExportCreateSerializer, request.data)
    scope = request_scope(request)
    raw = _export_filters(data)
    tree = filter_from_mem0(raw)
    require_filters(tree, "An export")
    if needs_post_filter(tree):  # refused now, not when the export is fetched
        raise ValidationError(
            "Exports filter on ids and times only: text and metadata filters work in get_all and search.",
            field="filters",
        )
    check_filter_apps(scope, tree)
    scope.require(cap.EXPORT)
    if pinned_value(tree, "user_id") is None:
        scope.require(cap.EXPORT_APP)  # the same rule memory_export applies when the export is fetched
    export_id = signing.dumps({"t": scope.tenant_id, "f": raw}, salt=EXPORT_SALT, compress=True)
    return Response(
        {"id": export_id, "message": "Memory export request received. The export is ready.", "status": "completed"},
        status=201,
    )


@extend_schema(
    operation_id="exports_get",
    summary="Fetch a memory export, by memory_export_id or by filters",
    description="JSON streamed as it is read: {id, status, results: [memory + history], count}.",
    request=s.ExportGetSerializer,
    responses={200: s.ExportSerializer, **READ_ERRORS},
)
@api_view(["POST"])
def export_get(request) -> Response | StreamingHttpResponse:
    data = validated(s.ExportGetSerializer, request.data)
    scope = request_scope(request)
    export_id = data.get("memory_export_id")
    if not export_id:
        return _export_response(scope, _export_filters(data), None)
    try:
        payload = signing.loads(export_id, salt=EXPORT_SALT, max_age=EXPORT_MAX_AGE)
    except signing.BadSignature:
        raise NotFound("Export not found (or expired: create a new one).") from None
    if payload.get("t") != scope.tenant_id:
        raise NotFound("Export not found (or expired: create a new one).")
    return _export_response(scope, payload["f"], export_id)
