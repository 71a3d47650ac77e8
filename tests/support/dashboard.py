"""The dashboard tests' world (two tenants, their staff, a few real memories) and helpers to act in it.

Used by tests/tenants/views, tests/browser and the access matrix; the fixtures are re-exported by those
folders' conftest.py files.
"""

from types import SimpleNamespace

import pytest

from memadmin.memory import services
from memadmin.memory.models import AuditEvent
from tenants.entities import entities_touch
from tenants.scoping import scope_for_membership
from tests.factories import UserFactory, two_tenant_world

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def world(db):
    """Two tenants x two apps, an admin/support/viewer in each, and an outsider who belongs nowhere."""
    w = two_tenant_world()
    w.outsider = UserFactory(username="outsider")
    return w


@pytest.fixture
def add(world):
    """Store one memory through the service, as the tenant's admin would (real embedder, real Valkey)."""

    def _add(tenant, app_id, user_id, text, **kwargs):
        scope = scope_for_membership(getattr(world, f"{tenant.slug}_admin"))
        records = services.memory_add(scope=scope, app_id=app_id, messages=text, user_id=user_id, **kwargs)
        entities_touch(scope=scope, records=records)  # as the API does after a write
        return records[0]

    return _add


@pytest.fixture
def memories(world, add):
    """A few memories per tenant; alice exists in both tenants (same id, different people)."""
    m = SimpleNamespace()
    m.alice_food = add(
        world.acme,
        "concierge_app",
        "alice",
        "Alice prefers vegetarian food and hates olives",
        agent_id="concierge",
        run_id="run-1",
    )
    m.alice_sport = add(world.acme, "sports_portal", "alice", "Alice plays tennis on Sundays", agent_id="coach")
    m.bob = add(world.acme, "concierge_app", "bob", "Bob is allergic to peanuts", agent_id="concierge")
    m.globex_alice = add(world.globex, "concierge_app", "alice", "Globex Alice likes sushi", agent_id="butler")
    return m


def login(client, membership_or_user):
    user = getattr(membership_or_user, "user", membership_or_user)
    client.force_login(user)
    return client


@pytest.fixture
def support(client, world):
    """The client, signed in as acme's support member."""
    return login(client, world.acme_support)


def events(action, **filters):
    return AuditEvent.objects.filter(action=action, **filters)
