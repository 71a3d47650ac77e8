"""End users and agents as the tenant knows them (tenants/entities.py): first seen, last seen, and what a
write costs in rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from memadmin.memory import services
from tenants.entities import SEEN_GRANULARITY, entities_touch
from tenants.models import Agent, EndUser
from tenants.scoping import scope_for_membership
from tests.factories import two_tenant_world


@pytest.fixture
def world(db):
    return two_tenant_world()


def write(world, user_id, text, **kwargs):
    scope = scope_for_membership(world.acme_admin)
    records = services.memory_add(scope=scope, app_id="concierge_app", messages=text, user_id=user_id, **kwargs)
    return scope, records


def touch(world, user_id, text, **kwargs):
    scope, records = write(world, user_id, text, **kwargs)
    with CaptureQueriesContext(connection) as queries:
        entities_touch(scope=scope, records=records)
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]


def test_a_first_write_creates_the_user_and_the_agent_seen_now(world):
    before = timezone.now()
    touch(world, "alice", "Alice likes green tea", agent_id="concierge")
    alice = EndUser.objects.get(tenant=world.acme, user_id="alice")
    assert before <= alice.first_seen == alice.last_seen <= timezone.now()
    assert Agent.objects.filter(app__tenant=world.acme, agent_id="concierge").count() == 1
    assert not EndUser.objects.filter(tenant=world.globex).exists()  # the other tenant knows nobody


def test_last_seen_moves_once_a_minute_not_on_every_write(world):
    touch(world, "alice", "Alice likes green tea")
    alice = EndUser.objects.get(tenant=world.acme, user_id="alice")
    # A second write within the minute: no UPDATE, the row says the same.
    assert touch(world, "alice", "Alice also likes jasmine tea") == []
    assert EndUser.objects.get(pk=alice.pk).last_seen == alice.last_seen
    # Once the last sighting is older than the granularity, the next write moves it (and only last_seen).
    stale = timezone.now() - SEEN_GRANULARITY - timedelta(seconds=1)
    EndUser.objects.filter(pk=alice.pk).update(last_seen=stale)
    updates = touch(world, "alice", "Alice drinks tea at four")
    assert len(updates) == 1
    fresh = EndUser.objects.get(pk=alice.pk)
    assert fresh.last_seen > stale and fresh.first_seen == alice.first_seen
