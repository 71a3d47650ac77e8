"""Which App a request means: the write target, and every app_id a filter names.

Resolved against the caller's Scope first, then the tenant's App rows, so the
answers are: in scope -> go on; offboarded -> 410; frozen (writes) -> 409;
anything else -> 404, the same whether it belongs to another tenant or to no one.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from memadmin.memory import capabilities as cap
from memadmin.memory.errors import Conflict, NotFound, ValidationError
from memadmin.memory.filters import And, Eq, In, Node, Not, Or
from memadmin.memory.ids import clean_app_id
from memadmin.memory.scope import AppRef, Scope
from tenants.api.auth import is_key_restricted, request_scope
from tenants.api.errors import Gone
from tenants.app_services import app_create
from tenants.models import App, Tenant
from tenants.request_log.context import note_apps

DEFAULT_APP_ID = "default"


def _gone(app_id: str) -> Gone:
    return Gone(f"App {app_id} was offboarded: its memories were deleted and it accepts no reads or writes.")


def _unusable(scope: Scope, app_id: str) -> Exception:
    """Why an app_id outside the scope cannot be used."""
    row = App.objects.filter(tenant_id=scope.tenant_id, app_id=app_id).only("status").first()
    if row is not None and row.status == App.Status.OFFBOARDED:
        return _gone(app_id)
    return NotFound(f"App {app_id} not found.")


def app_ids_in(node: Node) -> set[str]:
    if isinstance(node, Eq) and node.field == "app_id":
        return {node.value}
    if isinstance(node, In) and node.field == "app_id":
        return set(node.values)
    if isinstance(node, (And, Or)):
        return set().union(*(app_ids_in(child) for child in node.children))
    if isinstance(node, Not):
        return app_ids_in(node.child)
    return set()


def check_filter_apps(scope: Scope, tree: Node) -> None:
    """Every app_id a filter names must be one of the caller's apps: 404 / 410 otherwise."""
    named = sorted(app_ids_in(tree))
    for app_id in named:
        if scope.app(app_id) is None:
            raise _unusable(scope, app_id)
    note_apps(named)  # the request log's app column


def _writable(ref: AppRef) -> AppRef:
    note_apps([ref.app_id])  # the request log's app column: where the write went
    if not ref.writable:
        raise Conflict(ref.frozen_message(), status="frozen")
    return ref


def _create_app(request, scope: Scope, app_id: str) -> tuple[Scope, AppRef]:
    tenant = Tenant.objects.get(pk=scope.tenant_id)
    if not tenant.auto_create_apps:
        raise ValidationError(
            f"App {app_id} does not exist and this tenant does not create apps on first write: "
            "ask a tenant admin to create it, or enable automatic app creation.",
            field="app_id",
        )
    if is_key_restricted(request):
        raise ValidationError(
            f"App {app_id} does not exist, and this key is restricted to some apps: it cannot create one.",
            field="app_id",
        )
    scope.require(cap.WRITE)
    try:
        with transaction.atomic():
            app_create(tenant=tenant, app_id=app_id, name=app_id, is_default=not scope.apps)
    except IntegrityError:
        pass  # created by a concurrent request: use it
    scope = request_scope(request, refresh=True)
    ref = scope.app(app_id)
    if ref is None:
        raise _unusable(scope, app_id)
    return scope, ref


def app_for_write(request, scope: Scope, app_id) -> tuple[Scope, AppRef]:
    """(scope, app) a write goes to: named, else the default or only app; unknown -> created if allowed."""
    scope.require(cap.WRITE)
    if app_id in (None, ""):
        return _default_app(request, scope)
    app_id = clean_app_id(app_id, "app_id")
    ref = scope.app(app_id)
    if ref is not None:
        return scope, _writable(ref)
    if App.objects.filter(tenant_id=scope.tenant_id, app_id=app_id).exists():
        # Made since this request's scope was built (a concurrent first write to the same new app), or
        # outside the caller's reach: the scope as it stands now says which.
        scope = request_scope(request, refresh=True)
        ref = scope.app(app_id)
        if ref is None:
            raise _unusable(scope, app_id)
        return scope, _writable(ref)
    scope, ref = _create_app(request, scope, app_id)
    return scope, _writable(ref)


def _default_app(request, scope: Scope) -> tuple[Scope, AppRef]:
    defaults = App.objects.filter(tenant_id=scope.tenant_id, is_default=True).exclude(status=App.Status.OFFBOARDED)
    for app_id in defaults.values_list("app_id", flat=True):
        ref = scope.app(app_id)
        if ref is not None:
            return scope, _writable(ref)
    if len(scope.apps) == 1:
        return scope, _writable(scope.apps[0])
    if not scope.apps:
        return app_for_write(request, scope, DEFAULT_APP_ID)
    raise ValidationError(
        "This tenant has several apps and none is the default: send app_id "
        f"(one of {', '.join(a.app_id for a in scope.apps)}).",
        field="app_id",
    )
