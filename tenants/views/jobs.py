"""Job pages: offboard or move an app, export to a file, erase a user, and follow any job to its receipt."""

from __future__ import annotations

import json
from pathlib import Path

from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from memadmin.memory.collections import app_health, app_summary, store_names
from tenants.export_formats import CONTENT_TYPES
from tenants.jobs.forms import EraseForm, ExportJobForm, JobPageForm, MoveForm, OffboardForm
from tenants.jobs.models import Job
from tenants.jobs.selectors import job_eta, job_export_open, job_get, job_percent
from tenants.jobs.services import (
    job_cancel,
    job_erase_user,
    job_export,
    job_move_app,
    job_offboard_app,
)
from tenants.models import App
from tenants.views.common import TenantRequest, is_fragment, tenant_view


def _job_for(request, job_id) -> Job:
    """The one scoped fetch of a job: a member sees every job of the tenant, and no other tenant's."""
    return job_get(scope=request.scope, job_id=job_id)


def _to_job(request: TenantRequest, job: Job, back: str = "") -> HttpResponse:
    url = reverse("job", args=[request.tenant.slug, job.pk]) + (f"?back={back}" if back else "")
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@tenant_view
def job_list(request: TenantRequest) -> HttpResponse:
    jobs = Job.objects.for_tenant(request.tenant).select_related("app")[:200]
    return render(request, "jobs/list.html", {"jobs": jobs})


@tenant_view
def job_detail(request: TenantRequest, job_id) -> HttpResponse:
    job = _job_for(request, job_id)
    page = JobPageForm(request.GET)
    if not page.is_valid():
        return HttpResponse("back= names the page this job was started from: offboard, or nothing.", status=400)
    context = {
        "job": job,
        "active": job.state in Job.ACTIVE_STATES,
        "eta": job_eta(job),
        "percent": job_percent(job),
        "download": bool(job.result_file and job.result_expires_at and job.result_expires_at > timezone.now()),
        "receipt_rows": _deletion_rows(job),
        "back": _back_link(request, job, page),
    }
    template = "jobs/detail.html#progress" if is_fragment(request) else "jobs/detail.html"
    return render(request, template, context)


def _deletion_rows(job: Job) -> dict:
    """The receipt's per-app table (memories, history rows, messages, remaining) is a deletion's; an export or
    an import says what it carried in its own section."""
    return (job.receipt or {}).get("per_app", {}) if job.kind in Job.DELETION_KINDS else {}


def _back_link(request: TenantRequest, job: Job, page: JobPageForm) -> dict | None:
    """The way back to where the job was started: the offboarding page (while the app can still be offboarded),
    else the job's app."""
    app = job.app
    if app is None:
        return None
    slug = request.tenant.slug
    if page.cleaned_data["back"] == "offboard" and request.scope.app(app.app_id) is not None:
        return {"url": reverse("app_offboard", args=[slug, app.app_id]), "label": f"Back to offboarding {app.app_id}"}
    return {"url": reverse("app", args=[slug, app.app_id]), "label": app.app_id}


@tenant_view
def job_receipt(request: TenantRequest, job_id) -> HttpResponse:
    job = _job_for(request, job_id)
    if not job.receipt:
        raise Http404("This job has no receipt yet.")
    response = HttpResponse(json.dumps(job.receipt, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="receipt-{job.kind}-{job.pk}.json"'
    return response


@tenant_view
def job_download(request: TenantRequest, job_id) -> HttpResponse:
    job = _job_for(request, job_id)
    file = job_export_open(scope=request.scope, job=job)
    fmt = job.params.get("format", "ndjson")
    content_type = "application/gzip" if job.params.get("gzip") else CONTENT_TYPES.get(fmt, "application/octet-stream")
    return FileResponse(file, as_attachment=True, filename=Path(file.name).name, content_type=content_type)


@tenant_view
def job_cancel_view(request: TenantRequest, job_id) -> HttpResponse:
    job_cancel(scope=request.scope, job=_job_for(request, job_id))
    return _to_job(request, _job_for(request, job_id))


@tenant_view
def app_offboard(request: TenantRequest, app_id) -> HttpResponse:
    if request.scope.app(app_id) is None:
        return _tombstone_or_404(request, app_id)
    return _offboard_page(request, app_id, OffboardForm(app_id=app_id))


def _tombstone_or_404(request: TenantRequest, app_id: str) -> HttpResponse:
    """An app that is already offboarded has its receipt on its page (the tombstone); any other unknown id is 404."""
    if request.tenant.apps.filter(app_id=app_id, status=App.Status.OFFBOARDED).exists():
        return redirect("app", tenant_slug=request.tenant.slug, app_id=app_id)
    raise Http404("No such app.")


def _offboard_page(request: TenantRequest, app_id: str, form: OffboardForm, status: int = 200) -> HttpResponse:
    existing = (
        Job.objects.for_tenant(request.tenant)
        .filter(app__app_id=app_id, kind=Job.Kind.OFFBOARD_APP, state__in=Job.ACTIVE_STATES)
        .first()
    )
    return render(
        request,
        "jobs/offboard.html",
        {
            "app_id": app_id,
            "summary": app_summary(scope=request.scope, app_id=app_id),
            "form": form,
            "export_form": ExportJobForm(),
            "existing": existing,
            "health": app_health(app=request.scope.app(app_id)),
        },
        status=status,
    )


@tenant_view
def app_offboard_start(request: TenantRequest, app_id) -> HttpResponse:
    if request.scope.app(app_id) is None:
        return _tombstone_or_404(request, app_id)
    form = OffboardForm(request.POST, app_id=app_id)
    if not form.is_valid():
        return _offboard_page(request, app_id, form, status=400)
    job, _ = job_offboard_app(scope=request.scope, app_id=app_id)
    return _to_job(request, job)


def _move_page(request: TenantRequest, app_id: str, form: MoveForm | None = None, status: int = 200) -> HttpResponse:
    ref = request.scope.app(app_id)
    if ref is None:
        raise Http404("No such app.")
    others = [name for name in store_names() if name != ref.store]
    existing = (
        Job.objects.for_tenant(request.tenant)
        .filter(app__pk=ref.pk, kind=Job.Kind.MOVE_APP, state__in=(*Job.ACTIVE_STATES, Job.State.FAILED))
        .first()
    )
    return render(
        request,
        "jobs/move.html",
        {
            "app_id": app_id,
            "ref": ref,
            "others": others,
            "existing": existing,
            "form": form or MoveForm(app_id=app_id, stores=others),
            "summary": app_summary(scope=request.scope, app_id=app_id),
        },
        status=status,
    )


@tenant_view
def app_move(request: TenantRequest, app_id) -> HttpResponse:
    return _move_page(request, app_id)


@tenant_view
def app_move_start(request: TenantRequest, app_id) -> HttpResponse:
    ref = request.scope.app(app_id)
    if ref is None:
        raise Http404("No such app.")
    stores = store_names()
    form = MoveForm(request.POST, app_id=app_id, stores=stores)
    if not form.is_valid():
        return _move_page(request, app_id, form, status=400)
    job, _ = job_move_app(scope=request.scope, app_id=app_id, store=form.cleaned_data["store"])
    return _to_job(request, job)


@tenant_view
def app_export_job(request: TenantRequest, app_id=None) -> HttpResponse:
    if app_id is not None and request.scope.app(app_id) is None:
        raise Http404("No such app.")
    form = ExportJobForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Choose an export format: ndjson, json or csv.", status=400)
    job = job_export(
        scope=request.scope, app_id=app_id, fmt=form.cleaned_data["format"], compress=form.cleaned_data["gzip"]
    )
    return _to_job(request, job, back=form.cleaned_data["back"] if app_id else "")


@tenant_view
def user_erase(request: TenantRequest) -> HttpResponse:
    form = EraseForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(e for field in form.errors.values() for e in field)
        return HttpResponse(errors, status=400)
    job, _ = job_erase_user(scope=request.scope, user_id=form.cleaned_data["user_id"])
    return _to_job(request, job)
