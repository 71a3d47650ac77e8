"""Memories: add, list, search, one memory (get, update, delete, history) and delete_all."""

from __future__ import annotations

from uuid import uuid4

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework.decorators import api_view
from rest_framework.exceptions import ParseError
from rest_framework.response import Response

from memadmin.memory import capabilities as cap
from memadmin.memory import selectors, services
from memadmin.memory.errors import ValidationError
from memadmin.memory.filters import (
    ID_FIELDS,
    And,
    Eq,
    In,
    Node,
    and_,
    filter_from_mem0,
    needs_post_filter,
)
from memadmin.memory.ids import clean_id
from memadmin.memory.records import MemoryRecord
from memadmin.memory.scope import Scope
from tenants.api import serializers as s
from tenants.api.app_targets import app_for_write, check_filter_apps
from tenants.api.auth import request_scope
from tenants.api.idempotency import idempotent
from tenants.api.parsers import literal_untrusted
from tenants.api.platform import refuse_parameters
from tenants.api.views.common import (
    ERASURE_JOB,
    ERRORS,
    MAX_QUERY_FILTER_CHARS,
    MEMORY_ID,
    READ_ERRORS,
    UPDATE_UNSUPPORTED,
    WRITE_ERRORS,
    categories_tree,
    check_fields,
    date_range,
    deletion_json,
    erasure_response,
    filter_tree,
    keyword_tree,
    memory_json,
    page_url,
    projected,
    refuse_unsupported,
    require_filters,
    validated,
)
from tenants.entities import entities_touch
from tenants.jobs.models import Job
from tenants.jobs.services import job_offboard_app, offboarding_fits_a_request
from tenants.jobs.tasks import run_job
from tenants.projects import project_instructions
from tenants.untrusted_json import loads_untrusted

# --- add / list / search ----------------------------------------------------------


def _write_ids(data: dict) -> dict:
    """user_id / agent_id / run_id / app_id from the body, or from `filters` as the v3 client may send them."""
    ids = {name: data.get(name) or None for name in ID_FIELDS}
    extra = data.get("filters") or {}
    unknown = sorted(set(extra) - set(ID_FIELDS))
    if unknown:
        raise ValidationError(
            f"filters of an add may only name {', '.join(ID_FIELDS)}; got {', '.join(unknown)}.", field="filters"
        )
    for name, value in extra.items():
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            raise ValidationError(f"filters.{name} must be a string when adding.", field="filters")
        if ids[name] not in (None, value):
            raise ValidationError(f"{name} differs between the body and filters.", field=name)
        ids[name] = value
    if not (ids["user_id"] or ids["agent_id"] or ids["run_id"]):
        raise ValidationError(
            "A memory needs a user_id (and optionally agent_id, run_id): there is no global bucket.", field="user_id"
        )
    if not ids["user_id"]:
        raise ValidationError(
            "user_id is required: every memory belongs to one end user; agent_id and run_id narrow it.",
            field="user_id",
        )
    return ids


@extend_schema(
    operation_id="memories_add",
    summary="Add memories for one end user",
    description="Messages are stored verbatim (infer=false, the default here) or distilled by an LLM (infer=true). "
    "app_id picks the app: absent = the tenant's default app; unknown = created if the tenant allows it.",
    request=s.AddRequestSerializer,
    parameters=[
        OpenApiParameter(
            "Idempotency-Key",
            str,
            OpenApiParameter.HEADER,
            description="A retry with the same key and body (per API key, for 24 h) answers the first answer "
            "again without writing; the same key with another body is a 422.",
        )
    ],
    responses={
        200: PolymorphicProxySerializer(
            component_name="AddResult",
            serializers=[s.AddResponseSerializer, s.AsyncAddResponseSerializer],
            resource_type_field_name=None,
        ),
        **WRITE_ERRORS,
    },  # async_mode=true: the event's shape
)
@api_view(["POST"])
def memory_add(request) -> Response:
    # A retry with the same Idempotency-Key answers the first answer again (tenants/api/idempotency.py).
    return idempotent(request, request_scope(request), lambda: _add(request))


def _add(request) -> Response:
    data = validated(s.AddRequestSerializer, request.data)
    refuse_parameters("add", request.data)
    ids = _write_ids(data)
    scope, app = app_for_write(request, request_scope(request), ids["app_id"])
    messages = data["messages"]
    infer = data.get("infer", False)
    event_id = uuid4() if data.get("async_mode") else None
    records = services.memory_add(
        scope=scope,
        app_id=app.app_id,
        messages=[messages] if isinstance(messages, dict) else messages,
        user_id=ids["user_id"],
        agent_id=ids["agent_id"],
        run_id=ids["run_id"],
        metadata=data.get("metadata"),
        infer=infer,
        instructions=project_instructions(scope=scope) if infer else None,
        event_id=event_id,
    )
    entities_touch(scope=scope, records=records)
    results = []
    for record in records:
        event = record.metadata.pop("event", "ADD")
        results.append({**memory_json(record), "event": event})
    if event_id is not None:
        # memadmin writes at once, so the event a Mem0 async add would still be queueing has already succeeded.
        return Response(
            {
                "results": [
                    {
                        "message": "Memory added. Read its event at status_url.",
                        "status": "SUCCEEDED",
                        "event_id": str(event_id),
                        "status_url": reverse("api-event", args=[event_id]),
                        "memories": results,
                    }
                ]
            }
        )
    return Response({"results": results})


@extend_schema(
    operation_id="memories_list",
    summary="List memories (get_all), newest first",
    request=s.ListRequestSerializer,
    parameters=[s.PageQuerySerializer],
    responses={200: s.MemoryPageSerializer, **READ_ERRORS},
)
@api_view(["POST"])
def memory_list(request) -> Response:
    data = validated(s.ListRequestSerializer, request.data)
    query = validated(s.PageQuerySerializer, request.query_params)
    refuse_parameters("get_all", request.data)
    check_fields(data.get("fields"))
    scope = request_scope(request)
    tree = filter_tree(data.get("filters"))
    require_filters(tree, "get_all")
    check_filter_apps(scope, tree)
    tree = and_(
        tree,
        date_range(data.get("start_date"), data.get("end_date")),
        keyword_tree(data.get("keywords")),
        categories_tree(data.get("categories")),
    )
    page_number = data.get("page") or query["page"]
    page_size = data.get("page_size") or query["page_size"]
    page = selectors.memory_list(scope=scope, filters=tree, page=page_number, page_size=page_size)
    return Response(
        {
            "count": page.total,
            "next": page_url(request, page.page + 1, page_size) if page.has_next else None,
            "previous": page_url(request, page.page - 1, page_size) if page.has_previous else None,
            "results": projected([memory_json(record) for record in page.items], data.get("fields")),
        }
    )


@extend_schema(
    operation_id="memories_search",
    summary="Semantic search within filters",
    request=s.SearchRequestSerializer,
    responses={200: s.SearchResponseSerializer, **READ_ERRORS},
)
@api_view(["POST"])
def memory_search(request) -> Response:
    data = validated(s.SearchRequestSerializer, request.data)
    refuse_parameters("search", request.data)
    check_fields(data.get("fields"))
    scope = request_scope(request)
    tree = filter_tree(data.get("filters"))
    require_filters(tree, "search")
    check_filter_apps(scope, tree)
    if data.get("metadata"):
        tree = and_(tree, filter_from_mem0({"metadata": data["metadata"]}))
    tree = and_(tree, categories_tree(data.get("categories")))
    results = selectors.memory_search(
        scope=scope,
        query=data["query"],
        filters=tree,
        top_k=data["top_k"],
        threshold=data["threshold"],
        keyword_search=data["keyword_search"],
    )
    return Response({"results": projected([memory_json(record) for record in results], data.get("fields"))})


# --- one memory ---------------------------------------------------------------------


@extend_schema(
    methods=["GET"],
    operation_id="memory_get",
    parameters=[MEMORY_ID],
    summary="Get one memory",
    responses={200: s.MemorySerializer, **ERRORS},
)
@extend_schema(
    methods=["PUT"],
    operation_id="memory_update",
    parameters=[MEMORY_ID],
    summary="Update a memory's text and/or metadata (re-embedded; history kept)",
    request=s.UpdateRequestSerializer,
    responses={200: s.MemorySerializer, **WRITE_ERRORS},
)
@extend_schema(
    methods=["DELETE"],
    operation_id="memory_delete",
    summary="Delete one memory and its history",
    request=None,
    parameters=[
        MEMORY_ID,
        OpenApiParameter("delete_linked", bool, description="Accepted; memadmin keeps no linked chain."),
    ],
    responses={200: s.DeletionSerializer, **WRITE_ERRORS},
)
@api_view(["GET", "PUT", "DELETE"])
def memory_detail(request, memory_id: str) -> Response:
    scope = request_scope(request)
    if request.method == "GET":
        return Response(memory_json(selectors.memory_get(scope=scope, memory_id=memory_id)))
    if request.method == "PUT":
        data = validated(s.UpdateRequestSerializer, request.data)
        refuse_unsupported(request.data, UPDATE_UNSUPPORTED)
        return Response(memory_json(update_memory(scope, memory_id, data.get("text"), data.get("metadata"))))
    # Found in scope first: outside it is 404 whatever the role (no 403 that tells it exists).
    record = selectors.memory_get(scope=scope, memory_id=memory_id, audit=False)
    result = services.memory_delete(scope=scope, memory_id=record.id, app_id=record.app_id)
    return Response(deletion_json(result, "Memory deleted successfully!"))


def update_memory(scope: Scope, memory_id: str, text, metadata, record: MemoryRecord | None = None) -> MemoryRecord:
    if not text and metadata is None:
        raise ValidationError("Send text and/or metadata to update.", field="text")
    if record is None:  # found in scope before the role is checked: outside it is 404, never 403
        record = selectors.memory_get(scope=scope, memory_id=memory_id, audit=False)
    scope.require(cap.WRITE)
    # A metadata-only update keeps the text (the service always re-embeds what it is given).
    return services.memory_update(
        scope=scope, memory_id=record.id, text=text or record.memory, metadata=metadata, app_id=record.app_id
    )


@extend_schema(
    operation_id="memory_history",
    parameters=[MEMORY_ID],
    summary="A memory's change history, oldest first",
    responses={200: s.HistorySerializer(many=True), **ERRORS},
)
@api_view(["GET"])
def memory_history(request, memory_id: str) -> Response:
    return Response(selectors.memory_history(scope=request_scope(request), memory_id=memory_id))


# --- delete_all ---------------------------------------------------------------------


def _query_filters(raw: str | None):
    """`filters` in a query string: JSON, or the Python repr the 2.2 client makes of a dict (parsed as data,
    never evaluated: tenants/api/parsers.py literal_untrusted)."""
    if not raw:
        return None
    if len(raw) > MAX_QUERY_FILTER_CHARS:
        raise ValidationError(f"filters is too long: at most {MAX_QUERY_FILTER_CHARS} characters.", field="filters")
    try:
        return loads_untrusted(raw)  # the body's rules: bounded depth, valid Unicode, finite numbers
    except ParseError as exc:
        if not str(exc.detail).startswith("JSON parse error"):
            raise ValidationError(str(exc.detail), field="filters") from None
    try:
        return literal_untrusted(raw)
    except ParseError as exc:
        raise ValidationError(str(exc.detail), field="filters") from None


# A deletion by filter pins one person, agent or run. An app_id alone is the Mem0 Platform's way to offboard a brand
# (the seeds' `client.delete_all(app_id=...)`): it never deletes synchronously, it starts that one app's offboarding
# (grace period, verified drop, receipt, webhook), which an unrestricted key may ask for unless its admin turned it
# off (Scope.withheld: 403 saying why). A list of apps (`in`), or an app with a wildcard, never starts anything.
PINNING_FIELDS = ("user_id", "agent_id", "run_id")
NOT_A_WHOLE_APP = (
    "a list of apps never deletes anything: to offboard one app (every memory of it, with a grace period and a "
    "receipt) send delete_all(app_id=...) with that app alone, or offboard it in the dashboard."
)

# delete_users() and reset() delete every entity the key sees, apps included: one call must not offboard them all.
APP_ENTITY = (
    "memadmin never deletes an app as an entity (reset() would offboard every app at once): offboard the app "
    "instead, with delete_all(app_id=...) or in the dashboard, which keeps a grace period and writes a receipt."
)


def _pins_an_entity(tree: Node) -> bool:
    parts = tree.children if isinstance(tree, And) else (tree,)
    return any(isinstance(part, (Eq, In)) and part.field in PINNING_FIELDS for part in parts)


def _app_alone(tree: Node) -> str | None:
    """The app_id of a filter that names one app and nothing else, else None."""
    parts = tree.children if isinstance(tree, And) else (tree,)
    if len(parts) == 1 and isinstance(parts[0], Eq) and parts[0].field == "app_id":
        return parts[0].value
    return None


def _offboarding(scope: Scope, app_id: str) -> Response:
    """delete_all(app_id=...): the app's offboarding. With no grace period and an app small enough to delete
    within a request, it runs here and answers when the deletion is verified (200, as Mem0 answers); otherwise 202
    with the job, when it will run, and where to follow it."""
    scope.require(cap.OFFBOARD)
    scope.require_writes(scope.app_named(app_id))
    job, _ = job_offboard_app(scope=scope, app_id=app_id)
    if job.run_after <= timezone.now() and offboarding_fits_a_request(scope=scope, app_id=app_id):
        run_job(job.pk)
        job.refresh_from_db()
    body = {
        "job_id": str(job.pk),
        "kind": job.kind,
        "state": job.state,
        "app_id": app_id,
        "run_after": job.run_after.isoformat(),
        "status_url": reverse("api-job", args=[job.pk]),
    }
    if job.state == Job.State.SUCCEEDED:
        receipt = job.receipt or {}
        deleted = receipt.get("totals", {}).get("memories", job.done)
        return Response(
            {
                "message": "Memories deleted successfully!",
                "deleted": deleted,
                "remaining": receipt.get("remaining"),
                **body,
                "receipt": receipt,
            }
        )
    if job.state == Job.State.FAILED:
        return Response(
            {"message": f"Offboarding app {app_id} failed and will be resumed: {job.error}", **body}, status=202
        )
    when = "now" if job.run_after <= timezone.now() else f"after its grace period, at {job.run_after.isoformat()}"
    message = (
        f"Offboarding app {app_id}: every memory of it is deleted {when}; it accepts no writes meanwhile. "
        "Follow status_url for the receipt."
    )
    return Response({"message": message, **body}, status=202)


@extend_schema(
    operation_id="memories_delete_all",
    summary="Delete every memory matching the filters (delete_all); an app_id alone offboards that app",
    request=None,
    parameters=[s.DeleteAllQuerySerializer],
    responses={200: s.DeletionSerializer, 202: ERASURE_JOB, **WRITE_ERRORS},
)
@api_view(["DELETE"])
def memory_delete_all(request) -> Response:
    query = validated(s.DeleteAllQuerySerializer, request.query_params)
    ids = {name: query.get(name) for name in ID_FIELDS}
    for name, value in ids.items():
        if value not in (None, ""):
            clean_id(value, name)  # '*' is a filter wildcard, never a deletion target
    scope = request_scope(request)
    tree = filter_tree(_query_filters(query.get("filters")), **ids)
    if needs_post_filter(tree):
        raise ValidationError(
            "delete_all filters on ids and times only: the memory text and metadata are not deletion criteria "
            "(list the memories, then delete them by id).",
            field="filters",
        )
    if not _pins_an_entity(tree):
        app_id = _app_alone(tree)
        if app_id is not None:
            check_filter_apps(scope, tree)
            return _offboarding(scope, app_id)
        raise ValidationError(
            f"delete_all needs an exact user_id, agent_id or run_id; {NOT_A_WHOLE_APP}", field="user_id"
        )
    check_filter_apps(scope, tree)
    return erasure_response(scope, tree, "Memories deleted successfully!")
