"""The events feed: what happened in the tenant (adds, updates, deletions, erasures, offboardings, exports),
from the audit trail, filtered like the audit page (tenants/audit_filters.py AuditFilterForm)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import EmptyPage, Paginator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from memadmin.memory.errors import ValidationError
from tenants.activity import ACTIVITY, CATEGORIES, activity_event, activity_events, event_payloads
from tenants.api.auth import key_app_pks, request_scope
from tenants.api.views.common import ERRORS
from tenants.audit_filters import AuditFilterForm
from tenants.models import App

MAX_PAGE_SIZE = 200
FILTERS = [
    OpenApiParameter("category", str, enum=["activity", *CATEGORIES]),
    OpenApiParameter("action", str, enum=list(ACTIVITY), description="One event type."),
    OpenApiParameter("user_id", str),
    OpenApiParameter("app_id", str),
    OpenApiParameter("actor", str, description="Contains (a staff username or key:<name>)."),
    OpenApiParameter("date_from", OpenApiTypes.DATE),
    OpenApiParameter("date_to", OpenApiTypes.DATE),
    OpenApiParameter("page", int),
    OpenApiParameter("page_size", int, description=f"1-{MAX_PAGE_SIZE}, default 50."),
]


def _app_ids(request) -> list[str] | None:
    """An app-restricted key's apps, offboarded ones included (their offboarding is its news too)."""
    pks = key_app_pks(request)
    return None if pks is None else list(App.objects.filter(pk__in=pks).values_list("app_id", flat=True))


def _page_size(raw) -> int:
    try:
        size = int(raw or 50)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValidationError(f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}.", field="page_size")
    return size


@extend_schema(
    operation_id="events_list",
    summary="What happened in the tenant, newest first (from the audit trail)",
    parameters=FILTERS,
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def event_list(request) -> Response:
    scope = request_scope(request)
    events = activity_events(scope=scope, app_ids=_app_ids(request))
    form = AuditFilterForm(request.query_params, actions=ACTIVITY)
    if not form.is_valid():
        name, errors = next(iter(form.errors.items()))
        raise ValidationError(f"{name}: {' '.join(errors)}", field=name)
    size = _page_size(request.query_params.get("page_size"))
    paginator = Paginator(form.apply(events), size)
    number = form.cleaned_data.get("page") or 1
    try:
        page = paginator.page(number)
    except EmptyPage:
        raise ValidationError(f"page {number} is past the last page ({paginator.num_pages}).", field="page") from None

    def link(n: int) -> str:
        query = {**request.query_params.dict(), "page": n, "page_size": size}
        return request.build_absolute_uri(f"{request.path}?{urlencode(query)}")

    return Response(
        {
            "count": paginator.count,
            "next": link(number + 1) if page.has_next() else None,
            "previous": link(number - 1) if page.has_previous() else None,
            "results": event_payloads(page.object_list),
        }
    )


@extend_schema(
    operation_id="event_get",
    summary="One event and its status (an async add answers with its id)",
    parameters=[OpenApiParameter("event_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def event_detail(request, event_id) -> Response:
    scope = request_scope(request)
    event = activity_event(scope=scope, app_ids=_app_ids(request), event_id=event_id)
    return Response(event_payloads([event])[0])
