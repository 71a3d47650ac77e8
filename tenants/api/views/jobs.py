"""GET /v1/jobs/<id>/: following the job a deletion became (memadmin's own; an erasure's 202 names it)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from tenants.api import serializers as s
from tenants.api.auth import key_app_pks, request_scope
from tenants.api.views.common import ERRORS
from tenants.jobs.selectors import job_eta, job_get, job_percent

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
