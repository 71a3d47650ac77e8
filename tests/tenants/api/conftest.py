"""API test fixtures: two tenants with keys, the official MemoryClient against live_server, a DRF client."""

import os

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tenants.models import TenantAPIKey
from tests.factories import two_tenant_world
from tests.support.stores import place_tenant_apps

os.environ.setdefault("MEM0_TELEMETRY", "False")  # the official client must not phone home from tests


@pytest.fixture(autouse=True)
def fresh_throttle():
    # Throttle windows and lock counters live on the store, which clean_store empties before each test;
    # no clear afterwards: a test may leave the store pointed at a server it has just killed.
    cache.clear()


def _world(request, store_kind):
    """Acme's apps live on the store `store_kind` names (tests/support/stores.py); globex's on the default one."""
    w = two_tenant_world()
    place_tenant_apps(request, w.acme, store_kind)
    for app in (w.acme_concierge, w.acme_sports):
        app.refresh_from_db()

    def make_key(tenant, name=None, apps=()):
        row, key = TenantAPIKey.objects.create_key(name=name or f"{tenant.slug}-server", tenant=tenant)
        row.apps.set(apps)
        return key

    w.make_key = make_key
    w.acme_key = make_key(w.acme)
    w.globex_key = make_key(w.globex)
    return w


@pytest.fixture
def world(db, request, store_kind):
    return _world(request, store_kind)


@pytest.fixture
def live_world(transactional_db, request, store_kind):
    return _world(request, store_kind)


@pytest.fixture
def api():
    """A DRF test client; .as_key(key) / .as_user(user) set the credentials."""

    class Client(APIClient):
        def as_key(self, key):
            self.credentials(HTTP_AUTHORIZATION=f"Token {key}")
            return self

    return Client()


@pytest.fixture
def memory_client(live_server):
    from mem0 import MemoryClient

    clients = []

    def make(key):
        client = MemoryClient(api_key=key, host=live_server.url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.client.close()
