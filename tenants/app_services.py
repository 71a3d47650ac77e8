"""Creating apps: the one place a new app is given its memory store.

Choosing a store asks every store how much memory it has left (network I/O), so it happens here, called by
whatever creates an app (the API on a first write, registering a Mem0 collection, the import command, the
demo seed, Django admin), never in App.save()."""

from __future__ import annotations

from memadmin.memory.collections import store_for_new_app
from tenants.models import App, Tenant


def app_place(app: App) -> App:
    """Give a new app the store with the most free memory, unless one was named (a platform admin's pin)."""
    if not app.store:
        app.store = store_for_new_app()
    return app


def app_create(*, tenant: Tenant, app_id: str, **fields) -> App:
    """App.objects.create(), with the app placed on a store first."""
    app = app_place(App(tenant=tenant, app_id=app_id, **fields))
    app.save(force_insert=True)
    return app
