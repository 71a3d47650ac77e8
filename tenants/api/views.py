"""The Mem0-platform-compatible API: the subset mem0.MemoryClient (mem0ai 2.2) calls.

Thin views: authenticate, build the Scope, validate, call the memory service,
shape the answer like the Mem0 platform does. Every read and write goes
through memadmin.memory (which audits); errors become JSON in errors.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import chain
from urllib.parse import urlencode
from uuid import uuid4

from django.core import signing
from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework.decorators import api_view
from rest_framework.exceptions import ParseError
from rest_framework.response import Response

from memadmin.memory import capabilities as cap
from memadmin.memory import selectors, services
from memadmin.memory.errors import Conflict, IncompleteDeletion, NotFound, ValidationError
from memadmin.memory.filters import (
    EVERYTHING,
    ID_FIELDS,
    And,
    Eq,
    In,
    Node,
    and_,
    filter_from_fields,
    filter_from_mem0,
    pinned_value,
)
from memadmin.memory.ids import clean_app_id, clean_id
from memadmin.memory.records import DeletionResult, MemoryRecord
from memadmin.memory.scope import Scope
from tenants.api import serializers as s
from tenants.api.auth import key_app_pks, request_scope
from tenants.api.parsers import literal_untrusted, loads_untrusted
from tenants.api.platform import REFUSED, refuse
from tenants.api.scoping import app_for_write, check_filter_apps
from tenants.entities import entities_touch
from tenants.exports import ending_visibly, json_array
from tenants.jobs.selectors import job_eta, job_get, job_percent
from tenants.jobs.services import erasure_request
from tenants.links import data_link_issue
from tenants.models import Job
from tenants.projects import project_instructions

EXPORT_SALT = "memadmin.api-export"
EXPORT_MAX_AGE = timedelta(days=7)
ENTITY_TYPES = {"user": "user_id", "agent": "agent_id", "run": "run_id", "app": "app_id"}
MAX_QUERY_FILTER_CHARS = 8000
ENTITY_LIMIT = 10_000

# Platform parameters whose meaning we cannot honour: refusing beats silently ignoring them.
ADD_UNSUPPORTED = (
    "timestamp",
    "expiration_date",
    "custom_categories",
    "custom_instructions",
    "agent_custom_instructions",
    "structured_data_schema",
    "includes",
    "excludes",
    "enable_graph",
    "immutable",
)
READ_UNSUPPORTED = ("categories",)
UPDATE_UNSUPPORTED = ("timestamp", "expiration_date")

ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Invalid input (the message names the field)."),
    401: OpenApiResponse(s.ErrorSerializer, description="No API key, or an invalid or revoked one."),
    403: OpenApiResponse(s.ErrorSerializer, description="The role may not do this."),
    404: OpenApiResponse(s.ErrorSerializer, description="Not found in your scope (or not at all)."),
    429: OpenApiResponse(s.ErrorSerializer, description="Rate limit exceeded; see Retry-After."),
    503: OpenApiResponse(s.ErrorSerializer, description="The memory store is unreachable."),
}
WRITE_ERRORS = {
    **ERRORS,
    409: OpenApiResponse(s.ErrorSerializer, description="The app is frozen for offboarding, or under legal hold."),
    410: OpenApiResponse(s.ErrorSerializer, description="The app was offboarded."),
}
READ_ERRORS = {**ERRORS, 410: WRITE_ERRORS[410]}
MEMORY_ID = OpenApiParameter("memory_id", s.ID_SCHEMA, OpenApiParameter.PATH)


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _refuse_unsupported(data, names) -> None:
    used = sorted(n for n in names if isinstance(data, dict) and data.get(n) not in (None, False, "", [], {}))
    if used:
        raise ValidationError(f"Not supported by this server: {', '.join(used)}.", field=used[0])


def _memory(record: MemoryRecord) -> dict:
    return record.as_dict()


def _tree(raw_filters, **ids) -> Node:
    """Filters v2 JSON ANDed with plain entity ids."""
    tree = EVERYTHING if raw_filters is None else filter_from_mem0(raw_filters)
    if ids.get("app_id"):
        clean_app_id(ids["app_id"])
    return and_(tree, filter_from_fields(**ids))


def _require_filters(tree: Node, what: str) -> None:
    if tree == EVERYTHING:
        raise ValidationError(
            f"{what} needs filters naming user_id, agent_id, run_id or app_id "
            '(e.g. {"user_id": "alice"}): there is no global bucket.',
            field="filters",
        )


def _date_range(start, end) -> Node:
    bounds = {}
    if start:
        bounds["gte"] = start
    if end:
        bounds["lte"] = end
    return filter_from_mem0({"created_at": bounds}) if bounds else EVERYTHING


def _page_url(request, page: int, page_size: int) -> str:
    return request.build_absolute_uri(f"{request.path}?{urlencode({'page': page, 'page_size': page_size})}")


def receipt_url(receipt_id: str | None) -> str | None:
    """Where the signed receipt of an erasure is (GET, in the caller's scope)."""
    return reverse("api-receipt", args=[receipt_id]) if receipt_id else None


def _deletion(result: DeletionResult, message: str) -> dict:
    if result.remaining:
        raise IncompleteDeletion(
            f"The deletion was verified and {result.remaining} matching memories remain; retry it.",
            deleted=result.deleted,
            remaining=result.remaining,
        )
    return {"message": message, **result.as_dict(), "receipt_url": receipt_url(result.receipt_id)}


ERASURE_JOB = OpenApiResponse(s.ErasureJobSerializer, description="Erasure running, receipt follows: over "
                              "MEMADMIN_ERASURE_SYNC_LIMIT memories, or an index that cannot vouch for a count of 0. "
                              "Follow status_url (GET /v1/jobs/{job_id}/) until the state is succeeded; its receipt "
                              "then shows remaining 0.")  # fmt: skip


def _erasure(scope: Scope, tree: Node, message: str) -> Response:
    """200 with the verified counts, or 202 with the job that finishes the deletion and writes its receipt."""
    outcome = erasure_request(scope=scope, filters=tree)
    if isinstance(outcome, Job):
        return Response({"message": "Erasure running, receipt follows.", "job_id": str(outcome.pk),
                         "state": outcome.state, "reason": outcome.params.get("reason"),
                         "status_url": reverse("api-job", args=[outcome.pk])}, status=202)  # fmt: skip
    return Response(_deletion(outcome, message))


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
    responses={200: PolymorphicProxySerializer(
        component_name="AddResult", serializers=[s.AddResponseSerializer, s.AsyncAddResponseSerializer],
        resource_type_field_name=None), **WRITE_ERRORS},  # async_mode=true: the event's shape
)
@api_view(["POST"])
def memory_add(request) -> Response:
    data = _valid(s.AddRequestSerializer, request.data)
    _refuse_unsupported(request.data, ADD_UNSUPPORTED)
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
        results.append({**_memory(record), "event": event})
    if event_id is not None:
        # memadmin writes at once, so the event a Mem0 async add would still be queueing has already succeeded.
        return Response({"results": [{"message": "Memory added. Read its event at status_url.", "status": "SUCCEEDED",
                                      "event_id": str(event_id), "status_url": reverse("api-event", args=[event_id]),
                                      "memories": results}]})  # fmt: skip
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
    data = _valid(s.ListRequestSerializer, request.data)
    query = _valid(s.PageQuerySerializer, request.query_params)
    _refuse_unsupported(request.data, READ_UNSUPPORTED)
    scope = request_scope(request)
    tree = _tree(data.get("filters"))
    _require_filters(tree, "get_all")
    check_filter_apps(scope, tree)
    tree = and_(tree, _date_range(data.get("start_date"), data.get("end_date")))
    page_number = data.get("page") or query["page"]
    page_size = data.get("page_size") or query["page_size"]
    page = selectors.memory_list(scope=scope, filters=tree, page=page_number, page_size=page_size)
    return Response(
        {
            "count": page.total,
            "next": _page_url(request, page.page + 1, page_size) if page.has_next else None,
            "previous": _page_url(request, page.page - 1, page_size) if page.has_previous else None,
            "results": [_memory(record) for record in page.items],
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
    data = _valid(s.SearchRequestSerializer, request.data)
    _refuse_unsupported(request.data, READ_UNSUPPORTED)
    scope = request_scope(request)
    tree = _tree(data.get("filters"))
    _require_filters(tree, "search")
    check_filter_apps(scope, tree)
    results = selectors.memory_search(
        scope=scope, query=data["query"], filters=tree, top_k=data["top_k"], threshold=data["threshold"]
    )
    return Response({"results": [_memory(record) for record in results]})


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
        return Response(_memory(selectors.memory_get(scope=scope, memory_id=memory_id)))
    if request.method == "PUT":
        data = _valid(s.UpdateRequestSerializer, request.data)
        _refuse_unsupported(request.data, UPDATE_UNSUPPORTED)
        return Response(_memory(_update(scope, memory_id, data.get("text"), data.get("metadata"))))
    # Found in scope first: outside it is 404 whatever the role (no 403 that tells it exists).
    record = selectors.memory_get(scope=scope, memory_id=memory_id, audit=False)
    result = services.memory_delete(scope=scope, memory_id=record.id, app_id=record.app_id)
    return Response(_deletion(result, "Memory deleted successfully!"))


def _update(scope: Scope, memory_id: str, text, metadata, record: MemoryRecord | None = None) -> MemoryRecord:
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


# An app_id alone never pins a deletion: a whole app goes through offboarding (grace period, receipt).
PINNING_FIELDS = ("user_id", "agent_id", "run_id")
NOT_A_WHOLE_APP = (
    "an app_id alone never deletes a whole app or tenant: offboard the app instead (dashboard or "
    "`manage.py offboard`), which keeps a grace period and writes a receipt."
)


def _pins_an_entity(tree: Node) -> bool:
    parts = tree.children if isinstance(tree, And) else (tree,)
    return any(isinstance(part, (Eq, In)) and part.field in PINNING_FIELDS for part in parts)


@extend_schema(
    operation_id="memories_delete_all",
    summary="Delete every memory matching the filters (delete_all); a filter is required",
    request=None,
    parameters=[s.DeleteAllQuerySerializer],
    responses={200: s.DeletionSerializer, 202: ERASURE_JOB, **WRITE_ERRORS},
)
@api_view(["DELETE"])
def memory_delete_all(request) -> Response:
    query = _valid(s.DeleteAllQuerySerializer, request.query_params)
    ids = {name: query.get(name) for name in ID_FIELDS}
    for name, value in ids.items():
        if value not in (None, ""):
            clean_id(value, name)  # '*' is a filter wildcard, never a deletion target
    scope = request_scope(request)
    tree = _tree(_query_filters(query.get("filters")), **ids)
    if not _pins_an_entity(tree):
        raise ValidationError(f"delete_all needs an exact user_id, agent_id or run_id; {NOT_A_WHOLE_APP}",
                              field="user_id")  # fmt: skip
    check_filter_apps(scope, tree)
    return _erasure(scope, tree, "Memories deleted successfully!")


# --- entities -----------------------------------------------------------------------


@extend_schema(
    operation_id="entities_list",
    summary=f"Users, agents, runs and apps that have memories, with counts (the largest {ENTITY_LIMIT} of each)",
    responses={200: s.EntityListSerializer, **ERRORS},
)
@api_view(["GET"])
def entity_list(request) -> Response:
    scope = request_scope(request)
    counts = selectors.memory_counts(scope=scope, top=ENTITY_LIMIT)
    runs = selectors.memory_group_counts(scope=scope, field="run_id", limit=ENTITY_LIMIT)
    groups = (
        ("app", [(app_id, n) for app_id, n in counts.per_app.items() if n]),
        ("user", counts.per_user),
        ("agent", counts.per_agent),
        ("run", runs),
    )
    results = [
        {"id": f"{kind}:{name}", "name": name, "type": kind, "total_memories": n}
        for kind, pairs in groups
        for name, n in pairs
    ]
    return Response({"count": len(results), "next": None, "previous": None, "results": results})


@extend_schema(
    operation_id="entity_delete",
    summary="Delete every memory of one user, agent, run or app",
    request=None,
    parameters=[
        OpenApiParameter("entity_type", str, OpenApiParameter.PATH, enum=list(ENTITY_TYPES)),
        OpenApiParameter("name", s.ID_SCHEMA, OpenApiParameter.PATH),
    ],
    responses={200: s.DeletionSerializer, 202: ERASURE_JOB, **WRITE_ERRORS},
)
@api_view(["DELETE"])
def entity_delete(request, entity_type: str, name: str) -> Response:
    return _entity_erase(request, entity_type, name)


def _entity_erase(request, entity_type: str, name: str) -> Response:
    field = ENTITY_TYPES.get(entity_type)
    if field is None:
        raise ValidationError(f"Entity type must be one of {', '.join(ENTITY_TYPES)}.", field="entity_type")
    if field not in PINNING_FIELDS:
        raise ValidationError(f"Deleting an app entity: {NOT_A_WHOLE_APP}", field="entity_type")
    scope = request_scope(request)
    tree = filter_from_fields(**{field: clean_id(name, field)})
    check_filter_apps(scope, tree)
    return _erasure(scope, tree, "Entity deleted successfully.")


@extend_schema(
    methods=["GET"],
    operation_id="entity_profile",
    summary="get_profile: not supported (profiles need the hosted platform's LLM)",
    parameters=[OpenApiParameter("entity_type", str, OpenApiParameter.PATH),
                OpenApiParameter("name", s.ID_SCHEMA, OpenApiParameter.PATH)],  # fmt: skip
    responses=REFUSED,
)
@extend_schema(methods=["DELETE"], operation_id="entity_delete_profile_suffix", request=None,
               summary="Delete the entity whose id ends in /profile", responses={200: s.DeletionSerializer,
               202: ERASURE_JOB, **WRITE_ERRORS})  # fmt: skip
@api_view(["GET", "DELETE"])
def entity_profile(request, entity_type: str, name: str) -> Response:
    """GET is the client's get_profile. The path also matches deleting an entity whose id ends in
    "/profile" (ids may hold "/"), so DELETE is that deletion, exactly as entity_delete would run it."""
    if request.method == "DELETE":
        return _entity_erase(request, entity_type, f"{name}/profile")
    refuse("get_profile")


# --- batch --------------------------------------------------------------------------


def _batch_records(scope: Scope, items: list[dict]) -> list[MemoryRecord]:
    """Every memory of the batch, or NotFound before anything changes."""
    ids = [clean_id(item["memory_id"], "memory_id") for item in items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValidationError(f"Memory ids repeated in the batch: {', '.join(duplicates[:5])}.", field="memories")
    records = []
    for memory_id in ids:
        try:
            records.append(selectors.memory_get(scope=scope, memory_id=memory_id, audit=False))
        except NotFound:
            raise NotFound(f"Memory {memory_id} not found: nothing in the batch was changed.") from None
    return records


def _check_update(item: dict) -> None:
    """What memory_update would refuse, checked up front so a batch fails before its first write."""
    prefix = f"Memory {item['memory_id']}"
    text, metadata = item.get("text"), item.get("metadata")
    if not text and metadata is None:
        raise ValidationError(f"{prefix}: send text and/or metadata.", field="memories")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise ValidationError(f"{prefix}: metadata must be a JSON object.", field="memories")
        reserved = sorted(services.RESERVED_METADATA & set(metadata))
        if reserved:
            raise ValidationError(f"{prefix}: metadata cannot set reserved keys: {', '.join(reserved)}.",
                                  field="memories")  # fmt: skip


@extend_schema(
    methods=["PUT"],
    operation_id="memories_batch_update",
    summary="Update up to 1000 memories; all must be in scope or nothing changes",
    request=s.BatchUpdateSerializer,
    responses={200: s.BatchResultSerializer, **WRITE_ERRORS},
)
@extend_schema(
    methods=["DELETE"],
    operation_id="memories_batch_delete",
    summary="Delete up to 1000 memories; all must be in scope or nothing changes",
    request=s.BatchDeleteSerializer,
    responses={200: s.BatchResultSerializer, **WRITE_ERRORS},
)
@api_view(["PUT", "DELETE"])
def memory_batch(request) -> Response:
    scope = request_scope(request)
    if request.method == "PUT":
        items = _valid(s.BatchUpdateSerializer, request.data)["memories"]
        for item in items:  # the whole batch is valid before anything is written
            _check_update(item)
        records = _batch_records(scope, items)  # 404 for ids outside the scope, before any 403
        scope.require(cap.WRITE)
        for record in records:
            if not scope.app(record.app_id).writable:
                raise Conflict(f"{scope.app(record.app_id).frozen_message()} Nothing in the batch was changed.")
        for item, record in zip(items, records):
            _update(scope, record.id, item.get("text"), item.get("metadata"), record=record)
        return Response({"message": f"Successfully updated {len(records)} memories", "updated": len(records)})
    items = _valid(s.BatchDeleteSerializer, request.data)["memories"]
    records = _batch_records(scope, items)
    result = services.memory_delete_batch(scope=scope, memory_ids=[(r.id, r.app_id) for r in records])
    return Response({"message": f"Successfully deleted {result.deleted} memories", "deleted": result.deleted,
                     "remaining": result.remaining, "receipt_id": result.receipt_id,
                     "receipt_url": receipt_url(result.receipt_id)})  # fmt: skip


# --- exports ------------------------------------------------------------------------


def _export_filters(data: dict) -> dict:
    """One Filters v2 object from `filters` and plain ids, as stored in the export id."""
    parts = [data["filters"]] if data.get("filters") else []
    parts += [{name: data[name]} for name in ID_FIELDS if data.get(name)]
    return {"AND": parts} if parts else {}


def _export_response(scope: Scope, raw_filters: dict, export_id: str | None) -> StreamingHttpResponse:
    tree = filter_from_mem0(raw_filters)
    _require_filters(tree, "An export")
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
    data = _valid(s.ExportCreateSerializer, request.data)
    scope = request_scope(request)
    raw = _export_filters(data)
    tree = filter_from_mem0(raw)
    _require_filters(tree, "An export")
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
    data = _valid(s.ExportGetSerializer, request.data)
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


# --- end-user links -------------------------------------------------------------------


@extend_schema(
    operation_id="data_links_create",
    summary="Issue a signed 'your data' link for one end user",
    request=s.DataLinkRequestSerializer,
    responses={201: s.DataLinkSerializer, **ERRORS},
)
@api_view(["POST"])
def data_link_create(request) -> Response:
    data = _valid(s.DataLinkRequestSerializer, request.data)
    link, path = data_link_issue(
        scope=request_scope(request), user_id=data["user_id"], ttl=timedelta(seconds=data["ttl"])
    )
    return Response({"id": link.pk, "url": request.build_absolute_uri(path), "expires_at": link.expires_at}, status=201)


# --- jobs -------------------------------------------------------------------------------


@extend_schema(
    operation_id="job_get",
    summary="Follow a background job (the 202 of a large erasure names it) to its receipt",
    description="State, progress and times; once finished, the receipt (the dashboard's receipt.json). A restricted "
    "key sees only jobs that act within its apps; any other job is 404, like one that does not exist.",
    parameters=[OpenApiParameter("job_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
    responses={200: s.JobSerializer, **ERRORS},
)
@api_view(["GET"])
def job_detail(request, job_id) -> Response:
    job = job_get(scope=request_scope(request), job_id=job_id, within_apps=key_app_pks(request))
    progress = {"done": job.done, "total": job.total, "percent": job_percent(job), "eta_seconds": job_eta(job)}
    return Response(
        {
            "id": str(job.pk),
            "kind": job.kind,
            "state": job.state,
            "progress": progress,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "error": job.error or None,
            "receipt": job.receipt,
        }
    )
