"""The hosted Mem0 Platform's features that memadmin does not have, answered on purpose.

mem0.MemoryClient (mem0ai 2.2.1) calls these paths; without an answer they fell into the API's 404, which the
client reports as "memory not found". Each now gets a 400 (the client's ValidationError) whose message names
the client method and says why, from the one table below (docs/api.md's method table says the same).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request

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

REFUSED = {
    400: OpenApiResponse(s.ErrorSerializer, description="Not supported by memadmin; the message says why."),
    401: OpenApiResponse(s.ErrorSerializer, description="No API key, or an invalid or revoked one."),
    403: OpenApiResponse(s.ErrorSerializer, description="The role may not do this."),
    404: OpenApiResponse(s.ErrorSerializer, description="Not your project (org_id / project_id)."),
    429: OpenApiResponse(s.ErrorSerializer, description="Rate limit exceeded; see Retry-After."),
}


def refuse(method: str):
    raise NotSupported(method, WHY[method])


@extend_schema(operation_id="summary", summary="get_summary: not supported (needs the hosted platform's LLM)",
               request=None, responses=REFUSED)  # fmt: skip
@api_view(["POST"])
def summary(request: Request):
    refuse("get_summary")


@extend_schema(operation_id="feedback", summary="feedback: not supported (no feedback-tuned ranking)",
               request=None, responses=REFUSED)  # fmt: skip
@api_view(["POST"])
def feedback(request: Request):
    refuse("feedback")


@extend_schema(operation_id="profile_jobs", summary="generate_profile / sample_profiles: not supported",
               request=None, responses=REFUSED)  # fmt: skip
@api_view(["POST"])
def profile_jobs(request: Request):
    operation = request.data.get("operation") if isinstance(request.data, dict) else None
    refuse("sample_profiles" if operation == "sample" else "generate_profile")


@extend_schema(operation_id="profile_job", summary="get_profile_job: not supported", responses=REFUSED,
               parameters=[OpenApiParameter("job_id", str, OpenApiParameter.PATH)])  # fmt: skip
@api_view(["GET"])
def profile_job(request: Request, job_id: str):
    refuse("get_profile_job")


@extend_schema(methods=["GET"], operation_id="profile_settings_get", summary="get_profile_settings: not supported",
               responses=REFUSED)  # fmt: skip
@extend_schema(methods=["POST"], operation_id="profile_settings_update", request=None, responses=REFUSED,
               summary="update_profile_settings: not supported")  # fmt: skip
@api_view(["GET", "POST"])
def profile_settings(request: Request):
    refuse("get_profile_settings" if request.method == "GET" else "update_profile_settings")
