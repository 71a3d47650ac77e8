"""What the API views share: the error responses they document, the parameters refused by name, and the
helpers that validate input and shape answers like the Mem0 platform does."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.response import Response

from memadmin.memory.errors import IncompleteDeletion, ValidationError
from memadmin.memory.filters import (
    EVERYTHING,
    Node,
    and_,
    filter_from_fields,
    filter_from_mem0,
)
from memadmin.memory.ids import clean_app_id
from memadmin.memory.records import DeletionResult, MemoryRecord
from memadmin.memory.scope import Scope
from tenants.api import serializers as s
from tenants.jobs.models import Job
from tenants.jobs.services import erasure_request

EXPORT_SALT = "memadmin.api-export"
EXPORT_MAX_AGE = timedelta(days=7)
ENTITY_TYPES = {"user": "user_id", "agent": "agent_id", "run": "run_id", "app": "app_id"}
MAX_QUERY_FILTER_CHARS = 8000
ENTITY_LIMIT = 10_000

# Platform parameters whose meaning we cannot honour: refusing beats silently ignoring them.
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
    423: OpenApiResponse(s.ErrorSerializer, description="The app is paused: a tenant admin stopped its API writes."),
}
READ_ERRORS = {**ERRORS, 410: WRITE_ERRORS[410]}
MEMORY_ID = OpenApiParameter("memory_id", s.ID_SCHEMA, OpenApiParameter.PATH)


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def refuse_unsupported(data, names) -> None:
    used = sorted(n for n in names if isinstance(data, dict) and data.get(n) not in (None, False, "", [], {}))
    if used:
        raise ValidationError(f"Not supported by this server: {', '.join(used)}.", field=used[0])


def memory_json(record: MemoryRecord) -> dict:
    return record.as_dict()


def filter_tree(raw_filters, **ids) -> Node:
    """Filters v2 JSON ANDed with plain entity ids."""
    tree = EVERYTHING if raw_filters is None else filter_from_mem0(raw_filters)
    if ids.get("app_id"):
        clean_app_id(ids["app_id"])
    return and_(tree, filter_from_fields(**ids))


def require_filters(tree: Node, what: str) -> None:
    if tree == EVERYTHING:
        raise ValidationError(
            f"{what} needs filters naming user_id, agent_id, run_id or app_id "
            '(e.g. {"user_id": "alice"}): there is no global bucket.',
            field="filters",
        )


def date_range(start, end) -> Node:
    bounds = {}
    if start:
        bounds["gte"] = start
    if end:
        bounds["lte"] = end
    return filter_from_mem0({"created_at": bounds}) if bounds else EVERYTHING


MAX_KEYWORDS = 20
# What `fields` may name: the keys of a memory as the API returns it (search adds score).
RESULT_FIELDS = (
    "id",
    "app_id",
    "memory",
    "user_id",
    "agent_id",
    "run_id",
    "metadata",
    "created_at",
    "updated_at",
    "hash",
    "score",
)


def keyword_tree(keywords: str | None) -> Node:
    """get_all's keywords: every word occurs in the memory text, case-insensitively (a substring: "vegetarian"
    matches "vegetarians"), checked on the scope's candidates (memadmin/memory/post_filters.py)."""
    if keywords is None or not keywords.strip():
        return EVERYTHING
    words = list(dict.fromkeys(keywords.split()))
    if len(words) > MAX_KEYWORDS:
        raise ValidationError(f"keywords holds at most {MAX_KEYWORDS} words.", field="keywords")
    return filter_from_mem0({"AND": [{"memory": {"icontains": word}} for word in words]})


def categories_tree(categories: list[str] | None) -> Node:
    """get_all's and search's `categories`: tagged with any of them (metadata.categories, from a platform import)."""
    return filter_from_mem0({"categories": categories}) if categories else EVERYTHING


def check_fields(fields: list[str] | None) -> None:
    """Mem0's `fields`: an unknown name is a 400 naming it, before anything is read."""
    unknown = sorted(set(fields or ()) - set(RESULT_FIELDS))
    if unknown:
        raise ValidationError(
            f"fields: unknown field(s) {', '.join(unknown)}; choose from {', '.join(RESULT_FIELDS)}.", field="fields"
        )


def projected(results: list[dict], fields: list[str] | None) -> list[dict]:
    """Each result with only the named fields (checked by check_fields)."""
    if not fields:
        return results
    return [{name: result[name] for name in fields if name in result} for result in results]


def page_url(request, page: int, page_size: int) -> str:
    return request.build_absolute_uri(f"{request.path}?{urlencode({'page': page, 'page_size': page_size})}")


def receipt_url(receipt_id: str | None) -> str | None:
    """Where the signed receipt of an erasure is (GET, in the caller's scope)."""
    return reverse("api-receipt", args=[receipt_id]) if receipt_id else None


def deletion_json(result: DeletionResult, message: str) -> dict:
    if result.remaining:
        raise IncompleteDeletion(
            f"The deletion was verified and {result.remaining} matching memories remain; retry it.",
            deleted=result.deleted,
            remaining=result.remaining,
        )
    return {"message": message, **result.as_dict(), "receipt_url": receipt_url(result.receipt_id)}


ERASURE_JOB = OpenApiResponse(
    s.ErasureJobSerializer,
    description="Erasure running, receipt follows: over "
    "MEMADMIN_ERASURE_SYNC_LIMIT memories, or an index that cannot vouch for a count of 0. "
    "Follow status_url (GET /v1/jobs/{job_id}/) until the state is succeeded; its receipt "
    "then shows remaining 0.",
)


def erasure_response(scope: Scope, tree: Node, message: str) -> Response:
    """200 with the verified counts, or 202 with the job that finishes the deletion and writes its receipt."""
    outcome = erasure_request(scope=scope, filters=tree)
    if isinstance(outcome, Job):
        return Response(
            {
                "message": "Erasure running, receipt follows.",
                "job_id": str(outcome.pk),
                "state": outcome.state,
                "reason": outcome.params.get("reason"),
                "status_url": reverse("api-job", args=[outcome.pk]),
            },
            status=202,
        )
    return Response(deletion_json(outcome, message))
