"""Pausing an app's API writes: a tenant admin stops an app server's adds, updates and deletions (423) while
reads, the dashboard and end users' own deletions go on; resuming lets them through again. Audited, and each
way a webhook event (app.paused, app.resumed: tenants/webhooks/events.py)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from memadmin.memory.capabilities import PAUSE_APP
from memadmin.memory.errors import Conflict, NotFound
from memadmin.memory.scope import Scope
from memadmin.memory.services import audit_record
from tenants.models import App


def _app_for_update(scope: Scope, app_id: str) -> App:
    """The scope's app, locked for this transaction: two admins pausing at once write one pause."""
    try:
        return App.objects.select_for_update().get(tenant_id=scope.tenant_id, app_id=app_id)
    except App.DoesNotExist:
        raise NotFound(f"App {app_id} not found.") from None


def app_pause(*, scope: Scope, app_id: str) -> App:
    """Pause the app's API writes (a no-op when it already is: the first pause keeps its time and author)."""
    scope.require(PAUSE_APP)
    with transaction.atomic():
        app = _app_for_update(scope, app_id)
        if app.is_offboarded:
            raise Conflict(f"App {app_id} was offboarded: it accepts no writes to pause.", status="offboarded")
        if app.is_paused:
            return app
        app.paused_at, app.paused_by = timezone.now(), scope.actor
        app.save(update_fields=["paused_at", "paused_by"])
        audit_record(
            scope=scope, action="app.pause", app_id=app.app_id, details={"paused_at": app.paused_at.isoformat()}
        )
    return app


def app_resume(*, scope: Scope, app_id: str) -> App:
    """Let the app's API writes through again (a no-op when it is not paused)."""
    scope.require(PAUSE_APP)
    with transaction.atomic():
        app = _app_for_update(scope, app_id)
        if not app.is_paused:
            return app
        paused_at, paused_by = app.paused_at, app.paused_by
        app.paused_at, app.paused_by = None, ""
        app.save(update_fields=["paused_at", "paused_by"])
        details = {"paused_at": paused_at.isoformat(), "paused_by": paused_by}
        audit_record(scope=scope, action="app.resume", app_id=app.app_id, details=details)
    return app
