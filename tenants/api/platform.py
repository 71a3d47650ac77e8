"""The hosted Mem0 Platform's features that memadmin does not have, answered on purpose.

mem0.MemoryClient (mem0ai 2.2.1) calls these paths; without an answer they fell into the API's 404, which the
client reports as "memory not found". Each now gets a 400 (the client's ValidationError) whose message names
the client method and says why, from the one table below (docs/api.md's method table says the same).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request

from memadmin.memory.errors import ValidationError
from tenants.api import serializers as s
from tenants.api.errors import NotSupported

_PROFILES = (
    "memory profiles are written by the hosted Mem0 Platform's LLM; memadmin keeps memories as they were sent "
    "and generates no profiles. Read a user's memories with get_all(filters={'user_id': ...})."
)
WHY = {
    "get_summary": "summaries are written by the hosted Mem0 Platform's LLM; memadmin writes none. Read the "
    "memories with get_all or get_memory_export.",
    "feedback": "feedback tunes the hosted Mem0 Platform's ranking; memadmin's search is plain vector similarity "
    "and keeps no feedback.",
    "get_profile": _PROFILES,
    "generate_profile": _PROFILES,
    "sample_profiles": _PROFILES,
    "get_profile_job": _PROFILES,
    "get_profile_settings": _PROFILES,
    "update_profile_settings": _PROFILES,
    "project.create": "a memadmin tenant is one Mem0 project (org_id = project_id = the tenant's slug); platform "
    "superusers create tenants in Django admin (/admin/).",
    "project.delete": "that would delete every app of the tenant at once. Offboard apps one at a time from the "
    "dashboard or with `manage.py offboard`: a grace period, then a verified deletion and a receipt.",
}

# --- the v3 parameters of add / get_all / search ---------------------------------------------------------
# Every request parameter of Mem0's v3 spec for these operations (tests/fixtures/mem0_v3_params.json, a pinned
# copy) is in exactly one of these tables: it works (how, in a few words: docs/api.md says the same), or it is
# refused by name with a 400 saying why. A parameter in neither fails tests/tenants/api/test_v3_parameters.py.
_NEVER_EXPIRES = "nothing expires here (add refuses expiration_date), so true and false give the same answer"
_LATEST = "every memory is its latest version: updates happen in place and there are no linked chains"
_OBSERVED = (
    "the date a conversation was observed feeds the hosted Mem0 Platform's temporal reasoning (an LLM); it is "
    "not the memory's created time (that is `timestamp`) and memadmin stores the text as sent."
)
_CATEGORIES = "memadmin assigns no categories (the hosted Mem0 Platform's LLM does)."
_TAGGED = "memories tagged with any of these: the metadata.categories list a Mem0 Platform import kept"
WORKS = {
    "add": {
        "messages": "stored verbatim, or distilled with infer=true",
        "user_id": "required: the end user the memory belongs to",
        "agent_id": "stored as the memory's agent_id",
        "run_id": "stored as the memory's run_id",
        "app_id": "picks the app (absent: the tenant's default app)",
        "metadata": "stored with each memory (no scope keys)",
        "infer": "false: verbatim; true: facts extracted by the configured LLM",
        "output_format": "accepted; the answer is always the v1.1 envelope",
    },
    "get_all": {
        "filters": "the filter language of docs/api.md, within the key's scope",
        "start_date": "created_at on or after",
        "end_date": "created_at on or before",
        "page": "1-indexed page (query string first, then body)",
        "page_size": "results per page, at most 200",
        "fields": "each result carries only these fields",
        "keywords": "every word must occur in the memory text (full-text match, stemmed)",
        "categories": _TAGGED,
        "show_expired": _NEVER_EXPIRES,
        "latest_only": _LATEST,
    },
    "search": {
        "query": "embedded and compared by cosine similarity",
        "filters": "the filter language of docs/api.md, within the key's scope",
        "top_k": "at most this many results",
        "threshold": "minimum similarity",
        "rerank": "accepted; results stay in similarity order (no reranker)",
        "fields": "each result carries only these fields",
        "metadata": 'metadata conditions, ANDed with filters (as filters\' {"metadata": {...}})',
        "categories": _TAGGED,
        "show_expired": _NEVER_EXPIRES,
        "latest_only": _LATEST,
    },
}
REFUSED_PARAMETERS = {
    "add": {
        "expiration_date": "memadmin keeps a memory until it is deleted; it never hides one by date.",
        "custom_instructions": "per-call extraction instructions are not kept; set the project's instructions "
        "with project.update(custom_instructions=...).",
        "agent_custom_instructions": "per-call extraction instructions are not kept; set the project's "
        "instructions with project.update(custom_instructions=...).",
        "custom_categories": _CATEGORIES,
        "immutable": "memadmin has no immutable memories: an infer=true add may update existing ones.",
        "includes": "extraction hints are for the hosted Mem0 Platform's LLM; use the project's instructions.",
        "excludes": "extraction hints are for the hosted Mem0 Platform's LLM; use the project's instructions.",
        "enable_graph": "memadmin keeps no graph memory.",
        "structured_data_schema": "structured extraction needs the hosted Mem0 Platform.",
        "timestamp": "memadmin records when it stored a memory and never backdates created_at.",
        "prompt_profile_id": "saved prompt profiles live on the hosted Mem0 Platform; memadmin has none.",
        "temporal_reasoning": "temporal reasoning is the hosted Mem0 Platform's LLM feature.",
        "timezone": _OBSERVED,
        "observation_datetime": _OBSERVED,
        "observation_date": _OBSERVED,
    },
    "get_all": {},
    "search": {
        "reference_date": "searching as of a past date needs the hosted Mem0 Platform's temporal reasoning; "
        "narrow by time with a created_at filter instead.",
    },
}


def refuse_parameters(operation: str, data) -> None:
    """400 naming the first refused parameter the request really uses (false, null and empty are defaults)."""
    if not isinstance(data, dict):
        return
    for name, why in REFUSED_PARAMETERS[operation].items():
        if data.get(name) not in (None, False, "", [], {}):
            raise ValidationError(f"{name}: not supported by memadmin: {why}", field=name)


REFUSED = {
    400: OpenApiResponse(s.ErrorSerializer, description="Not supported by memadmin; the message says why."),
    401: OpenApiResponse(s.ErrorSerializer, description="No API key, or an invalid or revoked one."),
    403: OpenApiResponse(s.ErrorSerializer, description="The role may not do this."),
    404: OpenApiResponse(s.ErrorSerializer, description="Not your project (org_id / project_id)."),
    429: OpenApiResponse(s.ErrorSerializer, description="Rate limit exceeded; see Retry-After."),
}


def refuse(method: str):
    raise NotSupported(method, WHY[method])


@extend_schema(
    operation_id="summary",
    summary="get_summary: not supported (needs the hosted platform's LLM)",
    request=None,
    responses=REFUSED,
)
@api_view(["POST"])
def summary(request: Request):
    refuse("get_summary")


@extend_schema(
    operation_id="feedback",
    summary="feedback: not supported (no feedback-tuned ranking)",
    request=None,
    responses=REFUSED,
)
@api_view(["POST"])
def feedback(request: Request):
    refuse("feedback")


@extend_schema(
    operation_id="profile_jobs",
    summary="generate_profile / sample_profiles: not supported",
    request=None,
    responses=REFUSED,
)
@api_view(["POST"])
def profile_jobs(request: Request):
    operation = request.data.get("operation") if isinstance(request.data, dict) else None
    refuse("sample_profiles" if operation == "sample" else "generate_profile")


@extend_schema(
    operation_id="profile_job",
    summary="get_profile_job: not supported",
    responses=REFUSED,
    parameters=[OpenApiParameter("job_id", str, OpenApiParameter.PATH)],
)
@api_view(["GET"])
def profile_job(request: Request, job_id: str):
    refuse("get_profile_job")


@extend_schema(
    methods=["GET"],
    operation_id="profile_settings_get",
    summary="get_profile_settings: not supported",
    responses=REFUSED,
)
@extend_schema(
    methods=["POST"],
    operation_id="profile_settings_update",
    request=None,
    responses=REFUSED,
    summary="update_profile_settings: not supported",
)
@api_view(["GET", "POST"])
def profile_settings(request: Request):
    refuse("get_profile_settings" if request.method == "GET" else "update_profile_settings")
