"""The audit log (written by the memory service): the whole log for tenant admins, and for every other member
what they did themselves; filterable, exportable as CSV."""

import json
import uuid

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse

from memadmin.memory.models import AuditEvent
from tenants.audit_filters import AuditFilterForm
from tenants.audit_words import audit_describe
from tenants.export_formats import CONTENT_TYPES, csv_lines, export_filename
from tenants.views.common import TenantRequest, is_fragment, streamed_download, tenant_view

PAGE_SIZE = 50
CSV_COLUMNS = (
    "created_at",
    "actor",
    "actor_kind",
    "role",
    "tenant",
    "app_id",
    "action",
    "description",
    "user_id",
    "count",
    "memory_ids",
    "ip",
    "details",
)


def _events(request: TenantRequest) -> QuerySet:
    """The whole log for those who read the audit log (admins); everyone else sees what they did themselves."""
    events = AuditEvent.objects.for_tenant(request.tenant)
    if request.can.read_audit:
        return events
    return events.filter(actor=request.scope.actor, actor_kind="staff")


def _links(request: TenantRequest, event) -> None:
    """Where a row leads: the job it started or ended (its page has the receipt), or the erasure's signed receipt,
    for those who may open them. Ids from the details are checked, never trusted to reverse."""
    details = event.details if isinstance(event.details, dict) else {}
    event.job_url = event.receipt_url = None
    slug = request.tenant.slug
    job, receipt = _uuid(details.get("job")), _uuid(details.get("receipt_id"))
    if job and request.can.run_jobs:
        event.job_url = reverse("job", args=[slug, job])
    if receipt and request.can.read_receipts:
        event.receipt_url = reverse("erasure_receipt", args=[slug, receipt])


def _uuid(value) -> str | None:
    try:
        return str(uuid.UUID(str(value))) if value else None
    except ValueError:
        return None


def _filtered(request: TenantRequest) -> tuple[AuditFilterForm, QuerySet | None]:
    events = _events(request)
    actions = sorted(set(events.values_list("action", flat=True).distinct()))
    form = AuditFilterForm(request.GET, actions=actions)
    return form, (form.apply(events, tenant=request.tenant) if form.is_valid() else None)


@tenant_view
def audit_log(request: TenantRequest) -> HttpResponse:
    form, events = _filtered(request)
    template = "tenants/audit.html#results" if is_fragment(request) else "tenants/audit.html"
    if events is None:
        return render(request, template, {"form": form}, status=400)
    page = Paginator(events, PAGE_SIZE).get_page(form.cleaned_data.get("page") or 1)
    for event in page.object_list:
        event.described = audit_describe(event)
        _links(request, event)
    # The CSV link is rendered with the results: filters applied with htmx change it too.
    return render(request, template, {"form": form, "page": page, "csv_query": _csv_query(form)})


def _csv_query(form: AuditFilterForm) -> str:
    """The filters on screen, as the CSV link's query string (the page number left out: the file is all pages)."""
    data = form.data.copy()
    data.pop("page", None)
    return data.urlencode()


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


@tenant_view
def audit_csv(request: TenantRequest) -> HttpResponse:
    form, events = _filtered(request)
    if events is None:
        return render(request, "tenants/audit.html", {"form": form}, status=400)
    slug = request.tenant.slug
    rows = (
        [
            e.created_at.isoformat(),
            e.actor,
            e.actor_kind,
            e.role,
            slug,
            e.app_id,
            e.action,
            audit_describe(e),
            e.user_id,
            e.count,
            " ".join(e.memory_ids),
            e.ip or "",
            _json(e.details),
        ]
        for e in events.iterator(chunk_size=1000)
    )
    return streamed_download(
        csv_lines(rows, CSV_COLUMNS),
        f"{export_filename(slug, 'audit')}.csv",
        content_type=CONTENT_TYPES["csv"],
        scope=request.scope,
    )
