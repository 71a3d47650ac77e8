"""Scope: who is looking, and at which memories. Built only from an authenticated principal."""

from __future__ import annotations

from dataclasses import dataclass, field

from memadmin.memory import store
from memadmin.memory.capabilities import API, CAPABILITIES, END_USER, SYSTEM, VIEWER, refusal, role_can
from memadmin.memory.errors import NotFound, PermissionDenied
from memadmin.memory.filters import Eq, Node, and_, filter_from_fields
from memadmin.memory.ids import clean_id

_BUILDER = object()


@dataclass(frozen=True)
class AppRef:
    """What the service needs to know of an app; the tenants app builds it (App.app_ref())."""

    pk: int
    app_id: str
    collection: str
    writable: bool = True  # False while an offboarding is scheduled or running, or a move
    store: str = store.DEFAULT  # the Valkey server the app lives on (memadmin/memory/store.py)
    moving: bool = False  # between two stores: writes and deletions wait for the move to end

    def frozen_message(self) -> str:
        doing = "being moved to another memory store" if self.moving else "frozen for offboarding"
        return f"App {self.app_id} is {doing} and accepts no writes."


@dataclass(frozen=True)
class Scope:
    tenant_id: int
    tenant_slug: str
    apps: tuple[AppRef, ...]
    role: str
    actor: str
    actor_kind: str
    user_id: str | None = None
    ip: str | None = None
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self._token is not _BUILDER:
            raise TypeError("Scope is built only from a principal: use the scope_for_* functions.")
        # Spend the token: dataclasses.replace() copies it, and would otherwise turn an end user's
        # scope into an unpinned one (replace(scope, user_id=None)).
        object.__setattr__(self, "_token", None)
        if self.role not in CAPABILITIES:
            raise ValueError(f"unknown role {self.role!r}")

    def can(self, capability: str) -> bool:
        return role_can(self.role, capability)

    def require(self, capability: str) -> None:
        if not self.can(capability):
            raise PermissionDenied(refusal(self.role, capability))

    def app(self, app_id: str) -> AppRef | None:
        return next((app for app in self.apps if app.app_id == app_id), None)

    def app_named(self, app_id) -> AppRef:
        """The scope's app of this id (checked like any id: 400), else 404: an app outside the scope, or one
        that does not exist, is not found either way."""
        app = self.app(clean_id(app_id, "app_id"))
        if app is None:
            raise NotFound(f"App {app_id} not found.")
        return app

    def constraint(self) -> Node:
        """What the scope itself pins; every query is ANDed with it."""
        return and_(Eq("user_id", self.user_id)) if self.user_id is not None else and_()

    def narrowed(self, caller_filter: Node) -> Node:
        return and_(self.constraint(), caller_filter)


def _app_refs(apps) -> tuple[AppRef, ...]:
    # An app whose collection is gone answers None: no scope reaches it any more.
    refs = tuple(ref for ref in (app.app_ref() for app in apps) if ref is not None)
    # A scope is built from the apps' rows for every request and job: the freshest word on where each app
    # lives, handed to the engines, which address an app by its collection, here and nowhere else.
    for ref in refs:
        store.route(ref.collection, ref.store)
    return refs


def scope_for_membership(membership, *, ip: str | None = None) -> Scope:
    tenant = membership.tenant
    return Scope(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        apps=_app_refs(tenant.apps.all()),
        role=membership.role,
        actor=membership.user.get_username(),
        actor_kind="staff",
        ip=ip,
        _token=_BUILDER,
    )


def scope_for_api_key(api_key, *, ip: str | None = None) -> Scope:
    """The key's apps are the ones it is bound to, else all of its tenant's (``scope_apps()``)."""
    tenant = api_key.tenant
    return Scope(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        apps=_app_refs(api_key.scope_apps()),
        role=API,
        actor=f"key:{api_key.name}",
        actor_kind="api",
        ip=ip,
        _token=_BUILDER,
    )


def scope_for_end_user(data_link, *, ip: str | None = None) -> Scope:
    """An end user's link: their own memories in the apps the link was issued for, nothing else.

    The link's apps, never the tenant's: a link issued by an app-restricted key must not open the
    tenant's other apps (and a link with no apps opens none)."""
    tenant = data_link.tenant
    return Scope(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        apps=_app_refs(a for a in data_link.apps.all() if a.tenant_id == tenant.pk),
        role=END_USER,
        actor=f"enduser:{data_link.user_id}",
        actor_kind="enduser",
        user_id=data_link.user_id,
        ip=ip,
        _token=_BUILDER,
    )


def scope_for_job(job, *, apps=None) -> Scope:
    """A background job acts for whoever requested it, on the apps it names."""
    tenant = job.tenant
    return Scope(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        apps=_app_refs(apps if apps is not None else tenant.apps.all()),
        role=SYSTEM,
        actor=job.requested_by,
        actor_kind="system",
        ip=None,
        _token=_BUILDER,
    )


def scope_for_webhook(webhook) -> Scope:
    """A webhook that opted in to memory text reads it, at delivery time, in its own apps (or the tenant's):
    the viewer's capabilities, nothing that writes or deletes."""
    tenant = webhook.tenant
    bound = list(webhook.apps.all())
    return Scope(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        apps=_app_refs(bound or tenant.apps.all()),
        role=VIEWER,
        actor=f"webhook:{webhook.name}",
        actor_kind="system",
        ip=None,
        _token=_BUILDER,
    )


__all__ = ["AppRef", "Scope", "filter_from_fields", "scope_for_api_key", "scope_for_end_user",
           "scope_for_job", "scope_for_membership", "scope_for_webhook"]  # fmt: skip
