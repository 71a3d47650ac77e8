"""The audit log (written by the memory service) for tenant admins; filterable, exportable as CSV."""

import json

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import render

from memadmin.memory.models import AuditEvent
from tenants.audit_filters import AuditFilterForm
from tenants.audit_words import audit_describe
from tenants.export_formats import CONTENT_TYPES, csv_lines, export_filename
from tenants.views.common import TenantRequest, is_fragment, streamed_download, tenant_view

PAGE_SIZE = 50
CSV_COLUMNS = ("created_at", "actor", "actor_kind", "role", "tenant", "app_id", "action", "description", "user_id",
               "count", "memory_ids", "ip", "details")  # fmt: skip


def _filtered(request: TenantRequest) -> tuple[AuditFilterForm, QuerySet | None]:
    events = AuditEvent.objects.for_tenant(request.tenant)
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
    rows = ([e.created_at.isoformat(), e.actor, e.actor_kind, e.role, slug, e.app_id, e.action, audit_describe(e),
             e.user_id, e.count, " ".join(e.memory_ids), e.ip or "", _json(e.details)]
            for e in events.iterator(chunk_size=1000))  # fmt: skip
    return streamed_download(csv_lines(rows, CSV_COLUMNS), f"{export_filename(slug, 'audit')}.csv",
                             content_type=CONTENT_TYPES["csv"], scope=request.scope)  # fmt: skip
