"""API keys of a tenant: created (shown once) and revoked by tenant admins, from the dashboard or a command."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from memadmin.memory.capabilities import MANAGE_KEYS
from memadmin.memory.errors import NotFound, ValidationError
from memadmin.memory.ids import clean_app_id
from memadmin.memory.scope import Scope
from memadmin.memory.services import audit_record
from tenants.models import App, TenantAPIKey

MAX_KEY_DAYS = 3660  # an expiry date at most about ten years ahead


def api_key_expiry(day: date | None) -> datetime | None:
    """A key that expires on ``day`` is refused from the start of that day (the server's time zone); the day
    must be after today and within MAX_KEY_DAYS."""
    if day is None:
        return None
    today = timezone.localdate()
    if day <= today:
        raise ValidationError("The expiry date must be after today.", field="expires")
    if day > today + timedelta(days=MAX_KEY_DAYS):
        raise ValidationError(f"The expiry date can be at most {MAX_KEY_DAYS} days ahead.", field="expires")
    return timezone.make_aware(datetime.combine(day, time.min))


def api_key_create(
    *,
    tenant,
    name: str,
    app_ids: list[str],
    scope: Scope | None = None,
    may_offboard: bool = True,
    read_only: bool = False,
    expires: date | None = None,
) -> tuple[TenantAPIKey, str]:
    """Returns (row, the full key). Only the key's hash is stored: the caller shows the key once.

    ``may_offboard``: whether delete_all(app_id=...) with the key offboards that app; a key restricted to some apps
    never may (memadmin/memory/scope.py scope_for_api_key), so it is stored off for those, and so is a
    ``read_only`` key (it writes and deletes nothing). ``expires``: the day from which it is refused (401)."""
    if scope is not None:
        scope.require(MANAGE_KEYS)
    name = (name or "").strip()
    if not name or len(name) > 50:
        raise ValidationError("A key needs a name of 1 to 50 characters.", field="name")
    expiry = api_key_expiry(expires)
    app_ids = [clean_app_id(app_id) for app_id in app_ids]
    apps = list(App.objects.filter(tenant=tenant, app_id__in=app_ids).exclude(status=App.Status.OFFBOARDED))
    missing = sorted(set(app_ids) - {a.app_id for a in apps})
    if missing:
        raise ValidationError(f"This tenant has no active app {', '.join(missing)}.", field="apps")
    taken = f"An active key named “{name}” already exists: choose another name, or revoke that key first."
    if TenantAPIKey.objects.for_tenant(tenant).filter(name=name, revoked=False).exists():
        raise ValidationError(taken, field="name")
    try:
        with transaction.atomic():
            api_key, key = TenantAPIKey.objects.create_key(
                name=name,
                tenant=tenant,
                may_offboard=bool(may_offboard) and not apps and not read_only,
                read_only=bool(read_only),
                expiry_date=expiry,
            )
            api_key.apps.set(apps)
    except IntegrityError:  # the same name created concurrently: the constraint decides
        raise ValidationError(taken, field="name") from None
    if scope is not None:
        audit_record(
            scope=scope,
            action="apikey.create",
            details={
                "prefix": api_key.prefix,
                "name": name,
                "apps": [a.app_id for a in apps],
                "may_offboard": api_key.may_offboard,
                "read_only": api_key.read_only,
                "expires": expiry.isoformat() if expiry else None,
            },
        )
    return api_key, key


def api_key_revoke(*, scope: Scope, prefix: str) -> TenantAPIKey:
    scope.require(MANAGE_KEYS)
    try:
        api_key = TenantAPIKey.objects.for_tenant(scope.tenant_id).get(prefix=prefix)
    except TenantAPIKey.DoesNotExist:
        raise NotFound("API key not found.") from None
    if not api_key.revoked:
        api_key.revoked = True
        api_key.save(update_fields=["revoked"])
        audit_record(scope=scope, action="apikey.revoke", details={"prefix": api_key.prefix, "name": api_key.name})
    return api_key


def api_key_set_offboarding(*, scope: Scope, prefix: str, allowed: bool) -> TenantAPIKey:
    """Turn offboarding by delete_all(app_id=...) on or off for one live key (audited). A key restricted to some
    apps cannot have it turned on: the refusal says so."""
    scope.require(MANAGE_KEYS)
    try:
        api_key = TenantAPIKey.objects.for_tenant(scope.tenant_id).get(prefix=prefix, revoked=False)
    except TenantAPIKey.DoesNotExist:
        raise NotFound("API key not found.") from None
    if allowed and api_key.read_only:
        raise ValidationError(f"Key {api_key.name} is read-only: it never offboards an app.", field="may_offboard")
    if allowed and api_key.apps.exists():
        raise ValidationError(
            f"Key {api_key.name} is restricted to some apps: such a key never offboards an app.", field="may_offboard"
        )
    if api_key.may_offboard != allowed:
        api_key.may_offboard = allowed
        api_key.save(update_fields=["may_offboard"])
        audit_record(
            scope=scope,
            action="apikey.offboarding_" + ("on" if allowed else "off"),
            details={"prefix": api_key.prefix, "name": api_key.name},
        )
    return api_key
