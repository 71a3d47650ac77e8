"""The API request log for tenant admins (tenants/request_log/): every request a key made, filterable by key,
app, status class, method and days, newest first by keyset, with requests and errors per day as a chart."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render

from tenants.models import App, TenantAPIKey
from tenants.request_log.chart import requests_chart
from tenants.request_log.forms import RequestFilterForm
from tenants.request_log.selectors import RequestFilters, request_page, requests_per_day
from tenants.views.common import TenantRequest, is_fragment, tenant_view


def _filters(request: TenantRequest, form: RequestFilterForm) -> tuple[RequestFilters, TenantAPIKey | None]:
    """The form's values as filters; a key or an app that is not this tenant's does not exist here (404)."""
    data = form.cleaned_data
    key = None
    if data["key"]:
        key = TenantAPIKey.objects.for_tenant(request.tenant).filter(prefix=data["key"]).first()
        if key is None:
            raise Http404("No such API key.")
    if data["app"] and not App.objects.filter(tenant=request.tenant, app_id=data["app"]).exists():
        raise Http404("No such app.")
    first, last = form.days()
    filters = RequestFilters(
        key_id=key.pk if key else None,
        app_id=data["app"],
        status=data["status"],
        method=data["http_method"],
        first_day=first,
        last_day=last,
    )
    return filters, key


@tenant_view
def request_log(request: TenantRequest) -> HttpResponse:
    form = RequestFilterForm(request.GET)
    template = "tenants/requests.html#results" if is_fragment(request) else "tenants/requests.html"
    context = {
        "form": form,
        "keys": TenantAPIKey.objects.for_tenant(request.tenant).order_by("name", "prefix"),
        "retention_days": settings.MEMADMIN_REQUEST_LOG_DAYS,
        "apps": App.objects.filter(tenant=request.tenant).order_by("app_id").values_list("app_id", flat=True),
    }
    if not form.is_valid():
        return render(request, template, context, status=400)
    filters, key = _filters(request, form)
    context.update(
        key=key,
        page=request_page(tenant=request.tenant, filters=filters, after=form.cleaned_data["after"]),
        chart=requests_chart(requests_per_day(tenant=request.tenant, filters=filters)),
    )
    return render(request, template, context)
