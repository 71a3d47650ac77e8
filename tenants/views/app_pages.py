"""One app's page: what it holds, whether its index can prove an erasure complete, what guards it (retention,
legal holds), its jobs, and the ways out (export, offboard); an offboarded app shows its tombstone."""

from __future__ import annotations

from django.contrib import messages
from django.core.cache import cache
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from memadmin.memory.collections import DEFAULT_STORE, app_health, app_summary, store_names, store_public_url
from memadmin.memory.errors import StoreUnavailable
from memadmin.memory.models import LegalHold
from tenants.activity import activity_chart, app_activity
from tenants.jobs.forms import ExportJobForm
from tenants.jobs.models import Job
from tenants.models import App
from tenants.pausing import app_pause, app_resume
from tenants.views.common import TenantRequest, is_fragment, tenant_view

RECENT_JOBS = 10
SUMMARY_MAX_AGE = 60  # seconds: the counts are O(app) in the engine (seconds at 1M memories), like the overview's


def _app_for(request: TenantRequest, app_id: str) -> App:
    """The one scoped fetch of an app, offboarded ones included: another tenant's app does not exist here."""
    try:
        return request.tenant.apps.get(app_id=app_id)
    except App.DoesNotExist:
        raise Http404("No such app.") from None


@tenant_view
def app_detail(request: TenantRequest, app_id: str) -> HttpResponse:
    app = _app_for(request, app_id)
    jobs = Job.objects.for_tenant(request.tenant).filter(app=app)
    # What guards the data (hold reasons name legal matters) and whether the index can prove an erasure
    # complete: for those who answer for deletions, who could offboard the app.
    guardian = request.can.offboard
    context = {
        "app": app,
        "guardian": guardian,
        "jobs": list(jobs[:RECENT_JOBS]) if request.can.run_jobs else [],
        "offboarding": jobs.filter(kind=Job.Kind.OFFBOARD_APP).order_by("-created_at").first(),
        "export_form": ExportJobForm(),
        "chart": activity_chart(app_activity(app=app)),
    }
    if guardian:
        holds = LegalHold.objects.for_tenant(request.tenant).active()
        context["holds"] = holds.filter(Q(app=app) | Q(app__isnull=True), user_id="").select_related("app")
        context["user_holds"] = holds.exclude(user_id="").filter(Q(app=app) | Q(app__isnull=True)).count()
        context["retention"] = getattr(app, "retention", None)
        context["stores"] = len(store_names())
        context["moving"] = jobs.filter(kind=Job.Kind.MOVE_APP).exclude(state=Job.State.SUCCEEDED).first()
        if not app.is_offboarded:
            # For agents that use Mem0 OSS on this collection directly: where it lives (their password is theirs).
            try:
                context["store_url"] = store_public_url(app.store or DEFAULT_STORE)
            except StoreUnavailable:
                context["store_url"] = None
    if not app.is_offboarded:
        context["summary"] = cache.get_or_set(
            f"memadmin:app-summary:{app.collection_name}",
            lambda: {**app_summary(scope=request.scope, app_id=app.app_id), "counted_at": timezone.now()},
            SUMMARY_MAX_AGE,
        )
        context["health"] = app_health(app=app.app_ref()) if guardian else None
    return render(request, "tenants/app.html", context)


def _paused_changed(request: TenantRequest, app: App, message: str) -> HttpResponse:
    """The app page's pause card (HTMX: with the banner out of band), or back to the page with the message."""
    if not is_fragment(request):
        messages.success(request, message)
        return redirect("app", tenant_slug=request.tenant.slug, app_id=app.app_id)
    response = render(request, "tenants/app.html#pause", {"app": app})
    for template in ("tenants/app.html#banner", "partials/toast.html"):  # out of band: the page's top, the toast
        response.content += render(request, template, {"app": app, "message": message, "oob": True}).content
    return response


@tenant_view
def app_pause_view(request: TenantRequest, app_id: str) -> HttpResponse:
    app = app_pause(scope=request.scope, app_id=_app_for(request, app_id).app_id)
    return _paused_changed(request, app, f"{app.app_id} is paused: its API writes answer 423 until you resume it.")


@tenant_view
def app_resume_view(request: TenantRequest, app_id: str) -> HttpResponse:
    app = app_resume(scope=request.scope, app_id=_app_for(request, app_id).app_id)
    return _paused_changed(request, app, f"{app.app_id} is resumed: its API writes are accepted again.")
