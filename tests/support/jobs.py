"""The job tests' world (acme with two apps, globex), bulk loading of Mem0-layout memories, key counts.

Used by tests/tenants/jobs and by tests of the memory engine that run jobs; tests/tenants/jobs/conftest.py
re-exports the fixtures.
"""

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from bench.offboard import load_memories
from memadmin.memory import index, store
from tenants.scoping import scope_for_membership
from tests.factories import AppFactory, MembershipFactory, TenantFactory
from tests.support.stores import app_client, place_tenant_apps


def prepare_job_files(settings) -> None:
    """Flat indexes (cheap to fill) and no history or export files left over from another test."""
    settings.MEMADMIN_INDEX_ALGORITHM = "flat"
    for path in (Path(settings.DATA_DIR) / "history").glob("*.sqlite3"):
        # A cached Mem0 Memory holds its history file open: close it first, or the next test to write through
        # it (in a folder run after this one) finds a deleted, read-only database.
        store.drop_memory(path.stem)
    for name in ("history", "exports"):
        shutil.rmtree(Path(settings.DATA_DIR) / name, ignore_errors=True)


def jobs_world() -> SimpleNamespace:
    """acme (two apps, an admin/support/viewer) and globex (one app, its admin is acme's outsider)."""
    acme = TenantFactory(name="Acme", slug="acme")
    globex = TenantFactory(name="Globex", slug="globex")
    w = SimpleNamespace(acme=acme, globex=globex)
    w.concierge = AppFactory(tenant=acme, app_id="concierge_app", is_default=True)
    w.sports = AppFactory(tenant=acme, app_id="sports_portal")
    w.globex_app = AppFactory(tenant=globex, app_id="concierge_app")
    for role in ("admin", "support", "viewer"):
        setattr(w, role, MembershipFactory(tenant=acme, role=role))
    w.outsider = MembershipFactory(tenant=globex, role="admin")
    w.scope = lambda membership=None: scope_for_membership(membership or w.admin)
    return w


def loader():
    """load(app, n, **kw): n Mem0-layout memories (+ one history row each, + messages) in the app, on the store
    the app lives on."""

    def _load(app, n, **kwargs):
        app.refresh_from_db()
        index.ensure(app.app_ref().place)
        kwargs.setdefault("history_path", store.history_db_path(app.collection_name))
        return load_memories(app_client(app), app.collection_name, n, dims=settings.MEMADMIN_EMBEDDER_DIMS, **kwargs)

    return _load


@pytest.fixture(autouse=True)
def job_files(valkey_server, settings):
    prepare_job_files(settings)


@pytest.fixture
def world(db, request, store_kind):
    """jobs_world with acme's apps on the store `store_kind` names (tests/support/stores.py)."""
    w = jobs_world()
    place_tenant_apps(request, w.acme, store_kind)
    for app in (w.concierge, w.sports):
        app.refresh_from_db()
    return w


@pytest.fixture
def load(valkey_server):
    return loader()


def keys_of(raw_valkey, app) -> int:
    return sum(1 for _ in raw_valkey.scan_iter(match=f"mem0:{app.collection_name}:*", count=1000))


@pytest.fixture
def acme_valkey(world):
    """The raw client of the store acme's apps live on (the default one, or the second with `on_both_stores`)."""
    return app_client(world.concierge)
