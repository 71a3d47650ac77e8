"""Scope: who is looking, and at which memories. Built only from an authenticated principal."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from memadmin.memory import store
from memadmin.memory.capabilities import (
    API,
    CAPABILITIES,
    DELETE,
    DESCRIPTIONS,
    END_USER,
    MANAGE_LINKS,
    MANAGE_PROJECT,
    MANAGE_WEBHOOKS,
    OFFBOARD,
    SYSTEM,
    VIEWER,
    WRITE,
    refusal,
    role_can,
)
from memadmin.memory.errors import AppPaused, NotFound, PermissionDenied
from memadmin.memory.filters import Eq, Node, and_, filter_from_fields
from memadmin.memory.ids import clean_id

_BUILDER = object()

logger = logging.getLogger("memadmin.memory")


@dataclass(frozen=True)
class AppRef:
    """What the service needs to know of an app; the tenants app builds it (App.app_ref())."""

    pk: int
    app_id: str
    collection: str
    writable: bool = True  # False while an offboarding is scheduled or running, or a move
    store: str = store.DEFAULT  # the Valkey server the app lives on (memadmin/memory/store.py)
    moving: bool = False  # between two stores: writes and deletions wait for the move to end
    paused: bool = False  # a tenant admin paused the app's API writes: Scope.require_writes refuses them (423)

    @property
    def place(self) -> store.Place:
        """Where the app's memories live: what every engine function is handed (never looked up by collection)."""
        return store.Place(self.store, self.collection)

    def frozen_message(self) -> str:
        doing = "being moved to another memory store" if self.moving else "frozen for offboarding"
        return f"App {self.app_id} is {doing} and accepts no writes."

    def paused_message(self) -> str:
        return (
            f"App {self.app_id} is paused: its API writes (adds, updates and deletions) answer 423 until a "
            "tenant admin resumes it on the app's page. Reads keep working."
        )


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
    # Capabilities of the role that this principal does not get, each with the reason a refusal gives: what the
    # role table grants a kind of principal, one principal's settings may narrow (never widen).
    withheld: tuple[tuple[str, str], ...] = ()
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
        return role_can(self.role, capability) and not any(name == capability for name, _ in self.withheld)

    def refusal(self, capability: str) -> str:
        """Why this scope may not: the reason it was withheld for (a read-only key, a restricted key), else the
        role's refusal."""
        if role_can(self.role, capability):
            for name, reason in self.withheld:
                if name == capability:
                    return reason
        return refusal(self.role, capability)

    def require(self, capability: str) -> None:
        if not self.can(capability):
            raise PermissionDenied(self.refusal(capability))

    def require_writes(self, app: AppRef) -> AppRef:
        """An API key changes nothing in a paused app: no add, update or deletion. Staff, end users and jobs
        still may (a pause stops an app server, not the people who answer for its data)."""
        if app.paused and self.actor_kind == "api":
            raise AppPaused(app.paused_message(), app_id=app.app_id)
        return app

    def app(self, app_id: str) -> AppRef | None:
        return next((app for app in self.apps if app.app_id == app_id), None)

    def app_named(self, app_id) -> AppRef:
        """The scope's app of this id (checked like any id: 400), else 404: an app outside the scope, or one
        that does not exist, is not found either way."""
        app = self.app(clean_id(app_id, "app_id"))
        if app is None:
            raise NotFound(f"App {app_id} not found.")
        return app

    def holds(self, record) -> bool:
        """Belt and braces: every query already pinned the scope, so a record outside it is a bug worth a log line."""
        if self.constraint().matches(record.scope_fields()):
            return True
        logger.error("Dropped memory %s outside scope %s/%s", record.id, self.tenant_slug, self.user_id)
        return False

    def constraint(self) -> Node:
        """What the scope itself pins; every query is ANDed with it."""
        return and_(Eq("user_id", self.user_id)) if self.user_id is not None else and_()

    def narrowed(self, caller_filter: Node) -> Node:
        return and_(self.constraint(), caller_filter)


# The builders take plain values: the tenants app maps its principals (a membership, an API key, a "your
# data" link, a job, a webhook) onto them (tenants/scoping.py); the memory service knows none of its models.


KEY_RESTRICTED_NO_OFFBOARD = (
    "This key is restricted to some apps, so it cannot offboard an app (delete every memory of it): a tenant admin "
    "can offboard it in the dashboard, or with a key that is not restricted to some apps."
)
KEY_OFFBOARD_OFF = (
    "Offboarding apps is turned off for this key: a tenant admin can offboard the app in the dashboard, or turn "
    "offboarding on for this key on the API keys page."
)


# What a read-only key may not do: every write and deletion, and what changes the tenant's settings.
READ_ONLY_WITHHELD = (WRITE, DELETE, OFFBOARD, MANAGE_LINKS, MANAGE_WEBHOOKS, MANAGE_PROJECT)


def key_read_only_refusal(capability: str) -> str:
    return (
        f"This API key is read-only, so it cannot {DESCRIPTIONS[capability]}: it may search, get, list and "
        "export memories. A tenant admin can create a key that writes on the API keys page."
    )


def scope_for_staff(*, tenant_id: int, tenant_slug: str, apps, role: str, actor: str, ip: str | None = None) -> Scope:
    """A staff member of the tenant, with their role."""
    return Scope(
        tenant_id=tenant_id,
        tenant_slug=tenant_slug,
        apps=tuple(apps),
        role=role,
        actor=actor,
        actor_kind="staff",
        ip=ip,
        _token=_BUILDER,
    )


def scope_for_key(
    *,
    tenant_id: int,
    tenant_slug: str,
    apps,
    key_name: str,
    restricted: bool = False,
    may_offboard: bool = True,
    read_only: bool = False,
    ip: str | None = None,
) -> Scope:
    """An API key: the apps it is bound to, else all of its tenant's. Offboarding a whole app is for keys that are
    not ``restricted`` to some apps and whose admin left ``may_offboard`` on. A ``read_only`` key reads, searches
    and exports; every write and deletion is withheld, with a refusal that says the key is read-only."""
    withheld = ()
    if read_only:
        withheld = tuple((name, key_read_only_refusal(name)) for name in READ_ONLY_WITHHELD)
    elif restricted:
        withheld = ((OFFBOARD, KEY_RESTRICTED_NO_OFFBOARD),)
    elif not may_offboard:
        withheld = ((OFFBOARD, KEY_OFFBOARD_OFF),)
    return Scope(
        tenant_id=tenant_id,
        tenant_slug=tenant_slug,
        apps=tuple(apps),
        role=API,
        actor=f"key:{key_name}",
        actor_kind="api",
        ip=ip,
        withheld=withheld,
        _token=_BUILDER,
    )


def scope_for_link(*, tenant_id: int, tenant_slug: str, apps, user_id: str, ip: str | None = None) -> Scope:
    """An end user's link: their own memories in the apps the link was issued for, nothing else."""
    return Scope(
        tenant_id=tenant_id,
        tenant_slug=tenant_slug,
        apps=tuple(apps),
        role=END_USER,
        actor=f"enduser:{user_id}",
        actor_kind="enduser",
        user_id=user_id,
        ip=ip,
        _token=_BUILDER,
    )


def scope_for_system(*, tenant_id: int, tenant_slug: str, apps, actor: str) -> Scope:
    """A background job, acting for whoever requested it, on the apps it names."""
    return Scope(
        tenant_id=tenant_id,
        tenant_slug=tenant_slug,
        apps=tuple(apps),
        role=SYSTEM,
        actor=actor,
        actor_kind="system",
        ip=None,
        _token=_BUILDER,
    )


def scope_for_reader(*, tenant_id: int, tenant_slug: str, apps, actor: str) -> Scope:
    """A system reader (a webhook that opted in to memory text): the viewer's capabilities, nothing that writes
    or deletes."""
    return Scope(
        tenant_id=tenant_id,
        tenant_slug=tenant_slug,
        apps=tuple(apps),
        role=VIEWER,
        actor=actor,
        actor_kind="system",
        ip=None,
        _token=_BUILDER,
    )


__all__ = [
    "AppRef",
    "Scope",
    "filter_from_fields",
    "scope_for_key",
    "scope_for_link",
    "scope_for_reader",
    "scope_for_staff",
    "scope_for_system",
]
