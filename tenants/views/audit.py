"""The audit log (written by the memory service) for tenant admins; filterable, exportable as CSV."""

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render

from tenants.export_format import Echo, SafeCSVWriter, content_disposition
from tenants.forms import AuditFilterForm
from tenants.models import AuditEvent
from tenants.views.common import export_filename, is_fragment, tenant_view

PAGE_SIZE = 50
CSV_COLUMNS = ("created_at", "actor", "actor_kind", "role", "tenant", "app_id", "action", "user_id", "count",
               "memory_ids", "ip", "details")  # fmt: skip


def _filtered(request, membership):
    events = AuditEvent.objects.filter(tenant=membership.tenant)
    actions = sorted(set(events.values_list("action", flat=True).distinct()))
    form = AuditFilterForm(request.GET, actions=actions)
    return form, (form.apply(events) if form.is_valid() else None)


@tenant_view("audit")
def audit_log(request, membership):
    form, events = _filtered(request, membership)
    template = "tenants/audit.html#results" if is_fragment(request) else "tenants/audit.html"
    if events is None:
        return render(request, template, {"form": form}, status=400)
    page = Paginator(events, PAGE_SIZE).get_page(form.cleaned_data.get("page") or 1)
    return render(request, template, {"form": form, "page": page, "query": request.GET.urlencode()})


@tenant_view("audit")
def audit_csv(request, membership):
    form, events = _filtered(request, membership)
    if events is None:
        return render(request, "tenants/audit.html", {"form": form}, status=400)
    writer = SafeCSVWriter(Echo())
    slug = membership.tenant.slug

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for e in events.iterator(chunk_size=1000):
            yield writer.writerow([e.created_at.isoformat(), e.actor, e.actor_kind, e.role, slug, e.app_id, e.action,
                                   e.user_id, e.count, " ".join(e.memory_ids), e.ip or "", e.details])  # fmt: skip

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition(f"{export_filename(slug, 'audit')}.csv")
    return response
