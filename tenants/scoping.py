"""From the tenants app's principals to the memory service's Scope: a membership, an API key, a "your data"
link, a job or a webhook, mapped onto the plain values memadmin.memory.scope builds a scope from. The memory
service knows none of these models; this module is where their fields are read."""

from __future__ import annotations

from memadmin.memory.scope import (
    AppRef,
    Scope,
    scope_for_key,
    scope_for_link,
    scope_for_reader,
    scope_for_staff,
    scope_for_system,
)


def app_refs(apps) -> tuple[AppRef, ...]:
    # An app whose collection is gone answers None: no scope reaches it any more.
    return tuple(ref for ref in (app.app_ref() for app in apps) if ref is not None)


def scope_for_membership(membership, *, ip: str | None = None) -> Scope:
    tenant = membership.tenant
    return scope_for_staff(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        apps=app_refs(tenant.apps.all()),
        role=membership.role,
        actor=membership.user.get_username(),
        ip=ip,
    )


def scope_for_api_key(api_key, *, ip: str | None = None) -> Scope:
    """The key's apps are the ones it is bound to, else all of its tenant's (``scope_apps()``); a bound key, or one
    whose admin turned it off (``may_offboard``), does not offboard apps."""
    tenant = api_key.tenant
    apps = api_key.scope_apps()
    restricted = any(getattr(app, "bound_to_key", False) for app in apps)
    return scope_for_key(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        apps=app_refs(apps),
        key_name=api_key.name,
        restricted=restricted,
        may_offboard=api_key.may_offboard,
        read_only=api_key.read_only,
        ip=ip,
    )


def scope_for_end_user(data_link, *, ip: str | None = None) -> Scope:
    """An end user's link: their own memories in the apps the link was issued for, nothing else.

    The link's apps, never the tenant's: a link issued by an app-restricted key must not open the
    tenant's other apps (and a link with no apps opens none)."""
    tenant = data_link.tenant
    apps = app_refs(a for a in data_link.apps.all() if a.tenant_id == tenant.pk)
    return scope_for_link(tenant_id=tenant.pk, tenant_slug=tenant.slug, apps=apps, user_id=data_link.user_id, ip=ip)


def scope_for_job(job, *, apps=None) -> Scope:
    """A background job acts for whoever requested it, on the apps it names."""
    tenant = job.tenant
    return scope_for_system(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        apps=app_refs(apps if apps is not None else tenant.apps.all()),
        actor=job.requested_by,
    )


def scope_for_webhook(webhook) -> Scope:
    """A webhook that opted in to memory text reads it, at delivery time, in its own apps (or the tenant's):
    the viewer's capabilities, nothing that writes or deletes."""
    tenant = webhook.tenant
    bound = list(webhook.apps.all())
    return scope_for_reader(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        apps=app_refs(bound or tenant.apps.all()),
        actor=f"webhook:{webhook.name}",
    )
