"""Who is calling the API, and the Scope that follows from it.

Two principals: a tenant API key (``Authorization: Token <key>``, what
mem0.MemoryClient sends) or a logged-in staff member's session. A staff member
acts in one tenant: the one named by the ``X-Memadmin-Tenant`` header (slug),
or their only membership.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header

from memadmin.memory.errors import NotFound, ValidationError
from memadmin.memory.scope import Scope
from tenants.api.throttling import auth_failure, auth_lock_wait
from tenants.http import client_ip
from tenants.models import Membership, TenantAPIKey
from tenants.request_log.context import note_scope_apps
from tenants.scoping import scope_for_api_key, scope_for_membership

KEYWORDS = ("token", "api-key", "bearer")
TENANT_HEADER = "HTTP_X_MEMADMIN_TENANT"
# last_used is for humans ("used 3 minutes ago"): one write per key per minute is plenty.
LAST_USED_GRANULARITY = timedelta(minutes=1)


class KeyPrincipal:
    """request.user for an API key: authenticated, but not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, api_key: TenantAPIKey):
        self.api_key = api_key

    def get_username(self) -> str:
        return f"key:{self.api_key.name}"

    def __str__(self):
        return self.get_username()


class APIKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].decode("latin-1").lower() not in KEYWORDS:
            return None
        ip = client_ip(request)
        key = parts[1].decode("ascii", "replace") if len(parts) == 2 else ""
        prefix = key.partition(".")[0][:16] if "." in key else None
        wait = auth_lock_wait(ip=ip, prefix=prefix)
        if wait:  # checked before the key is: a locked address or prefix learns nothing from its guesses
            raise exceptions.Throttled(wait)
        if len(parts) != 2:
            auth_failure(ip=ip)
            raise exceptions.AuthenticationFailed("Invalid Authorization header: send 'Token <api key>'.")
        try:
            api_key = TenantAPIKey.objects.get_from_key(key)
        except TenantAPIKey.DoesNotExist:
            auth_failure(ip=ip, prefix=prefix)
            # Revoked and unknown keys are told apart nowhere: both are simply not valid.
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.") from None
        if api_key.has_expired:
            # Not a guess (the key's hash matched): no failure counted against the address or the prefix, so an
            # app server still sending a key that expired cannot lock out the tenant's other keys behind its IP.
            day = timezone.localtime(api_key.expiry_date).date().isoformat()
            raise exceptions.AuthenticationFailed(
                f"This API key ({api_key.name}) expired on {day}: a tenant admin "
                "can create a new one on the API keys page."
            )
        now = timezone.now()
        if api_key.last_used is None or now - api_key.last_used > LAST_USED_GRANULARITY:
            TenantAPIKey.objects.filter(pk=api_key.pk).update(last_used=now)
        return KeyPrincipal(api_key), api_key

    def authenticate_header(self, request):
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403 when no credentials came.
        return 'Token realm="memadmin"'


class StaffSessionAuthentication(SessionAuthentication):
    """The dashboard's session (CSRF-checked on unsafe methods, like any session)."""


def _membership(request) -> Membership:
    memberships = Membership.objects.select_related("tenant", "user").filter(user=request.user)
    slug = request.META.get(TENANT_HEADER, "").strip()
    if slug:
        membership = memberships.filter(tenant__slug=slug).first()
        if membership is None:
            raise NotFound("Tenant not found.")
        return membership
    found = list(memberships[:2])
    if not found:
        raise exceptions.PermissionDenied("You are not a member of any tenant.")
    if len(found) > 1:
        raise ValidationError("You belong to several tenants: name one with the X-Memadmin-Tenant header (its slug).")
    return found[0]


def request_scope(request, *, refresh: bool = False) -> Scope:
    """The caller's Scope, built once per request (again after the API created an app)."""
    cached = getattr(request, "_memadmin_scope", None)
    if cached is not None and not refresh:
        return cached
    if isinstance(request.auth, TenantAPIKey):
        scope = scope_for_api_key(request.auth, ip=client_ip(request))
    else:
        scope = scope_for_membership(_membership(request), ip=client_ip(request))
    request._memadmin_scope = scope
    note_scope_apps(app.app_id for app in scope.apps)  # the request log's app, when the request names none
    return scope


def is_key_restricted(request) -> bool:
    return isinstance(request.auth, TenantAPIKey) and request.auth.apps.exists()


def key_app_pks(request) -> list[int] | None:
    """The apps an app-restricted key is bound to (offboarded ones included, unlike its scope); None when the
    caller is not restricted to some apps."""
    if not isinstance(request.auth, TenantAPIKey):
        return None
    return list(request.auth.apps.values_list("pk", flat=True)) or None


class APIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.auth.APIKeyAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <api key>`, as mem0.MemoryClient sends it. Create keys in the dashboard or "
            "with `manage.py createapikey`.",
        }


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.auth.StaffSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "A staff session; name the tenant with X-Memadmin-Tenant if you belong to several.",
        }
