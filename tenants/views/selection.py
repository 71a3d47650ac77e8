"""Bulk selection in memory tables: delete or export the ticked rows, the page, or every memory matching the
page's filters. Both answer a preview first ("N memories of M people in K apps"), then act only when the
count typed back (delete) or carried back (export) is still the store's; a deletion ends on a page listing a
receipt per person, an export is the export job."""

from __future__ import annotations

import uuid

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from memadmin.memory.filters import EVERYTHING
from memadmin.memory.receipts import KINDS, receipt_list
from tenants.entity_forms import SelectionForm
from tenants.jobs.models import Job
from tenants.jobs.services import job_export
from tenants.selections import (
    Erased,
    erase_matching,
    erase_rows,
    rows_filter,
    rows_found,
    rows_preview,
    selection_preview,
)
from tenants.views.common import TenantRequest, render_error, safe_next, tenant_view

SESSION_KEY = "memadmin.bulk_erased"
KEPT = 5  # results a session keeps (one per recent deletion, so each tab's result page reloads)


def erased_stash(request: TenantRequest, erased: Erased, *, what: str, back: str) -> str:
    """Keep a bulk deletion's outcome for its result page (post-redirect-get); returns that page's URL."""
    key = uuid.uuid4().hex
    kept = dict(list(request.session.get(SESSION_KEY, {}).items())[-(KEPT - 1) :])
    kept[key] = {
        "what": what,
        "back": back,
        "deleted": erased.deleted,
        "remaining": erased.remaining,
        "people": [list(person) for person in erased.people],
        "jobs": [str(job.pk) for job in erased.jobs],
    }
    request.session[SESSION_KEY] = kept
    return f"{reverse('deletion_done', args=[request.tenant.slug])}?r={key}"


def _selection(request: TenantRequest, form: SelectionForm):
    """(preview, the rows found, or None for every matching memory)."""
    app_id = form.cleaned_data.get("app_id")
    if app_id and request.scope.app(app_id) is None:
        raise Http404("No such app.")  # another tenant's app, or none: not found, like its memories
    if form.matching:
        return selection_preview(scope=request.scope, filters=form.filters()), None
    records = rows_found(scope=request.scope, rows=form.cleaned_data["rows"])
    return rows_preview(records), records


def _confirm_page(request: TenantRequest, form: SelectionForm, preview, action: str) -> HttpResponse:
    typed = form.cleaned_data.get("confirm")
    # A count typed back that no longer matches: the store changed since the preview (or a typo); show it again.
    error = f"The selection now holds {preview.total} memories, not {typed}: check it again." if typed else ""
    context = {
        "form": form,
        "preview": preview,
        "action": action,
        "error": error,
        "data": form.cleaned_data,
        "back": safe_next(request, reverse("memories", args=[request.tenant.slug])),
    }
    return render(request, "tenants/selection_confirm.html", context, status=400 if typed else 200)


def _invalid(request: TenantRequest, form: SelectionForm) -> HttpResponse:
    errors = "; ".join(e for errors in form.errors.values() for e in errors)
    return render_error(request, 400, f"Nothing was done: {errors}", form=form)


@tenant_view
def selection_delete(request: TenantRequest) -> HttpResponse:
    form = SelectionForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form)
    if form.matching and form.filters() == EVERYTHING:  # said before the preview, not after the count is typed
        message = "Deleting every memory needs at least one filter (a user, an agent, a run or an app); to delete a "
        return render_error(request, 400, message + "whole app, offboard it.")
    preview, records = _selection(request, form)
    if not preview.total or not form.confirmed(preview.total):
        return _confirm_page(request, form, preview, "delete")
    if records is None:
        erased = erase_matching(scope=request.scope, fields=form.fields_dict())
    else:
        erased = erase_rows(scope=request.scope, records=records)
    back = safe_next(request, reverse("memories", args=[request.tenant.slug]))
    what = f"{preview.total} selected memor{'y' if preview.total == 1 else 'ies'}"
    return redirect(erased_stash(request, erased, what=what, back=back))


@tenant_view
def selection_export(request: TenantRequest) -> HttpResponse:
    form = SelectionForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form)
    preview, records = _selection(request, form)
    if not preview.total or not form.confirmed(preview.total):
        return _confirm_page(request, form, preview, "export")
    filters = form.filters() if records is None else rows_filter(records)
    job = job_export(scope=request.scope, filters=filters)
    return redirect("job", tenant_slug=request.tenant.slug, job_id=job.pk)


@tenant_view
def deletion_done(request: TenantRequest) -> HttpResponse:
    """A bulk deletion's outcome: per person what went and their signed receipt; the jobs still running."""
    result = request.session.get(SESSION_KEY, {}).get(request.GET.get("r", ""))
    context = {"result": result, "kinds": KINDS}
    if result:
        ids = [receipt_id for _, _, receipt_id in result["people"] if receipt_id]
        context["receipts"] = list(receipt_list(scope=request.scope).filter(pk__in=ids).order_by("user_id"))
        context["jobs"] = list(Job.objects.for_tenant(request.tenant).filter(pk__in=result["jobs"]))
    return render(request, "tenants/deletion_done.html", context)
