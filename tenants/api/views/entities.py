"""Entities (users, agents, runs, apps): their list, their profile, and deleting everything one of them holds."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from memadmin.memory import selectors
from memadmin.memory.errors import ValidationError
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.ids import clean_id
from tenants.api import serializers as s
from tenants.api.app_targets import check_filter_apps
from tenants.api.auth import request_scope
from tenants.api.platform import REFUSED, refuse
from tenants.api.views.common import (
    ENTITY_LIMIT,
    ENTITY_TYPES,
    ERASURE_JOB,
    ERRORS,
    WRITE_ERRORS,
    erasure_response,
)
from tenants.api.views.memories import APP_ENTITY, PINNING_FIELDS

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
        raise ValidationError(APP_ENTITY, field="entity_type")
    scope = request_scope(request)
    tree = filter_from_fields(**{field: clean_id(name, field)})
    check_filter_apps(scope, tree)
    return erasure_response(scope, tree, "Entity deleted successfully.")


@extend_schema(
    methods=["GET"],
    operation_id="entity_profile",
    summary="get_profile: not supported (profiles need the hosted platform's LLM)",
    parameters=[
        OpenApiParameter("entity_type", str, OpenApiParameter.PATH),
        OpenApiParameter("name", s.ID_SCHEMA, OpenApiParameter.PATH),
    ],
    responses=REFUSED,
)
@extend_schema(
    methods=["DELETE"],
    operation_id="entity_delete_profile_suffix",
    request=None,
    summary="Delete the entity whose id ends in /profile",
    responses={200: s.DeletionSerializer, 202: ERASURE_JOB, **WRITE_ERRORS},
)
@api_view(["GET", "DELETE"])
def entity_profile(request, entity_type: str, name: str) -> Response:
    """GET is the client's get_profile. The path also matches deleting an entity whose id ends in
    "/profile" (ids may hold "/"), so DELETE is that deletion, exactly as entity_delete would run it."""
    if request.method == "DELETE":
        return _entity_erase(request, entity_type, f"{name}/profile")
    refuse("get_profile")
