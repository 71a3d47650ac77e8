"""API keys of the tenant, for tenant admins: list, create (the key is shown once), revoke."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render

from memadmin.memory.errors import ValidationError
from tenants.keys import api_key_create, api_key_revoke
from tenants.models import TenantAPIKey
from tenants.views.common import TenantRequest, tenant_view


def _page(request: TenantRequest, *, new_key=None, form_error=None, status=200) -> HttpResponse:
    keys = TenantAPIKey.objects.for_tenant(request.tenant).prefetch_related("apps").order_by("-created")
    return render(request, "tenants/api_keys.html", {
        "keys": keys,
        "new_key": new_key,
        "form_error": form_error,
        "apps": [app for app in request.scope.apps],
    }, status=status)  # fmt: skip


@tenant_view
def api_keys(request: TenantRequest) -> HttpResponse:
    return _page(request)


@tenant_view
def api_key_new(request: TenantRequest) -> HttpResponse:
    # The full key exists only in this response: it is rendered, never stored or redirected with.
    try:
        api_key, key = api_key_create(
            tenant=request.tenant, name=request.POST.get("name", ""), app_ids=request.POST.getlist("apps"),
            scope=request.scope,
        )  # fmt: skip
    except ValidationError as exc:
        return _page(request, form_error=exc.message, status=400)
    response = _page(request, new_key={"name": api_key.name, "key": key})
    response["Cache-Control"] = "no-store"
    return response


@tenant_view
def api_key_revoke_view(request: TenantRequest, prefix) -> HttpResponse:
    api_key = api_key_revoke(scope=request.scope, prefix=prefix)
    messages.success(request, f"Key {api_key.name} ({api_key.prefix}) is revoked; requests with it now get 401.")
    return redirect("api_keys", tenant_slug=request.tenant.slug)
