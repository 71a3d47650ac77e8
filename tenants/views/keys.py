"""API keys of the tenant, for tenant admins: list, create (the key is shown once), revoke."""

from datetime import timedelta

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from memadmin.memory.errors import ValidationError
from tenants.forms import APIKeyForm
from tenants.keys import api_key_create, api_key_revoke, api_key_set_offboarding
from tenants.models import TenantAPIKey
from tenants.views.common import TenantRequest, is_fragment, tenant_view

# The full key crosses the redirect in the session (server-side) and is removed by the first page that shows
# it, like an issued your-data link: a reload of that page, or of the form, never shows or creates it again.
NEW_KEY_SESSION_KEY = "memadmin.new_api_key"


def _page(request: TenantRequest, *, new_key=None, form_error=None, name="", form=None, status=200) -> HttpResponse:
    keys = TenantAPIKey.objects.for_tenant(request.tenant).prefetch_related("apps").order_by("-created")
    sent = form.data if form is not None else None
    return render(
        request,
        "tenants/api_keys.html",
        {
            "keys": keys,
            "new_key": new_key,
            "form_error": form_error,
            "name": name,
            "apps": [app for app in request.scope.apps],
            # What was sent, kept when the form comes back with an error; a fresh form may offboard by default.
            "chosen_apps": sent.getlist("apps") if sent is not None else [],
            "may_offboard": sent is None or sent.get("may_offboard") == "on",
            "read_only": sent is not None and sent.get("read_only") == "on",
            "expires": sent.get("expires", "") if sent is not None else "",
            "tomorrow": timezone.localdate() + timedelta(days=1),
        },
        status=status,
    )


@tenant_view
def api_keys(request: TenantRequest) -> HttpResponse:
    new_key = request.session.pop(NEW_KEY_SESSION_KEY, None)
    if not (isinstance(new_key, dict) and new_key.get("tenant") == request.tenant.pk):
        new_key = None
    response = _page(request, new_key=new_key)
    if new_key:
        response["Cache-Control"] = "no-store"
    return response


@tenant_view
def api_key_new(request: TenantRequest) -> HttpResponse:
    form = APIKeyForm(request.POST, app_ids=[app.app_id for app in request.scope.apps])
    name = request.POST.get("name", "")
    if not form.is_valid():
        error = next(e for errors in form.errors.values() for e in errors)
        return _page(request, form_error=error, name=name, form=form, status=400)
    data = form.cleaned_data
    try:
        api_key, key = api_key_create(
            tenant=request.tenant,
            name=data["name"],
            app_ids=data["apps"],
            scope=request.scope,
            may_offboard=data["may_offboard"],
            read_only=data["read_only"],
            expires=data["expires"],
        )
    except ValidationError as exc:
        return _page(request, form_error=exc.message, name=name, form=form, status=400)
    request.session[NEW_KEY_SESSION_KEY] = {"tenant": request.tenant.pk, "name": api_key.name, "key": key}
    return redirect("api_keys", tenant_slug=request.tenant.slug)


@tenant_view
def api_key_revoke_view(request: TenantRequest, prefix) -> HttpResponse:
    api_key = api_key_revoke(scope=request.scope, prefix=prefix)
    message = f"Key {api_key.name} ({api_key.prefix}) is revoked; requests with it now get 401."
    if is_fragment(request):  # the form swaps its own row; the message comes out of band
        return render(request, "tenants/api_keys.html#key_row", {"k": api_key, "message": message, "oob": True})
    messages.success(request, message)
    return redirect("api_keys", tenant_slug=request.tenant.slug)


@tenant_view
def api_key_offboarding(request: TenantRequest, prefix) -> HttpResponse:
    """Turn delete_all(app_id=...) offboarding on or off for one key (``allowed`` = "on" / "off")."""
    allowed = request.POST.get("allowed")
    if allowed not in ("on", "off"):
        return HttpResponse("Send allowed=on or allowed=off.", status=400, content_type="text/plain")
    try:
        api_key = api_key_set_offboarding(scope=request.scope, prefix=prefix, allowed=allowed == "on")
    except ValidationError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")
    state = "may now offboard an app with delete_all(app_id=…)" if api_key.may_offboard else "can no longer offboard"
    message = f"Key {api_key.name} ({api_key.prefix}) {state}."
    if is_fragment(request):
        return render(request, "tenants/api_keys.html#key_row", {"k": api_key, "message": message, "oob": True})
    messages.success(request, message)
    return redirect("api_keys", tenant_slug=request.tenant.slug)
