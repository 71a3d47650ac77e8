"""The memory page's edit form and the app page's pause, against hostile input: every refusal is a 400 (a form
error) or a 404, never a 500, and nothing is stored; an edit can never move a memory into another scope."""

import json

import pytest

from memadmin.memory import selectors
from memadmin.memory.models import AuditEvent
from tenants.models import App
from tenants.scoping import scope_for_membership
from tests.support import dashboard
from tests.support.dashboard import login

# The dashboard tests' world and memories (tests/support/dashboard.py), beside the hostile suite's own fixtures.
world, add, memories = dashboard.world, dashboard.add, dashboard.memories

HOSTILE = [
    pytest.param({"text": "fine", "metadata": '{"k": "\\udfff"}'}, "valid Unicode", id="lone-surrogate-in-metadata"),
    pytest.param({"text": "fine", "metadata": '{"\\udfff": 1}'}, "valid Unicode", id="lone-surrogate-key"),
    pytest.param({"text": "nul \x00 byte", "metadata": "{}"}, "Null characters are not allowed", id="nul-in-text"),
    pytest.param({"text": "x" * 20_001, "metadata": "{}"}, "at most 20000 characters", id="text-too-long"),
    pytest.param({"text": "fine", "metadata": "1e999"}, "metadata must be a JSON object", id="infinite-number"),
    pytest.param({"text": "fine", "metadata": '{"n": -1e999}'}, "no NaN or infinite numbers", id="infinite-value"),
    pytest.param({"text": "fine", "metadata": '{"n": Infinity}'}, "Infinity is not a JSON number", id="infinity"),
    pytest.param({"text": "fine", "metadata": "[" * 100_000}, "nests", id="deep-array"),
    pytest.param(
        {"text": "fine", "metadata": json.dumps({"run_id": "r", "user_id": "bob"})}, "reserved keys", id="identity"
    ),
    pytest.param({"text": "fine"}, "", id="no-metadata-field"),
]


@pytest.mark.parametrize(("data", "says"), HOSTILE)
def test_hostile_edits_are_refused_and_nothing_changes(client, world, memories, data, says):
    login(client, world.acme_admin)
    memory = memories.alice_food
    response = client.post(f"/t/acme/memories/{memory.app_id}/{memory.id}/edit/save/", data)
    stored = selectors.memory_find(scope=scope_for_membership(world.acme_admin), memory_id=memory.id)
    if not says:  # an absent metadata field is an empty object: the save goes through, in scope
        assert response.status_code == 302 and stored.memory == "fine" and stored.metadata == {}
        assert stored.user_id == "alice" and stored.agent_id == "concierge" and stored.run_id == "run-1"
        return
    assert response.status_code == 400, response.content[:300]
    assert says in response.content.decode().replace("&quot;", '"')
    assert stored.memory == memory.memory and stored.user_id == "alice"
    assert not AuditEvent.objects.filter(action="memory.edit").exists()


def test_an_edit_request_for_another_tenants_memory_under_any_url_is_404(client, world, memories):
    theirs = memories.globex_alice
    login(client, world.acme_admin)
    for path in (
        f"/t/acme/memories/{theirs.app_id}/{theirs.id}/edit/save/",
        f"/t/globex/memories/{theirs.app_id}/{theirs.id}/edit/save/",
        f"/t/acme/memories/sports_portal/{theirs.id}/edit/save/",
    ):
        assert client.post(path, {"text": "mine now", "metadata": "{}"}).status_code == 404
    stored = selectors.memory_find(scope=scope_for_membership(world.globex_admin), memory_id=theirs.id)
    assert stored.memory == theirs.memory


def test_without_the_csrf_token_nothing_is_edited_or_paused(world, memories):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    login(client, world.acme_admin)
    memory = memories.bob
    assert client.post(f"/t/acme/memories/{memory.app_id}/{memory.id}/edit/save/", {"text": "x"}).status_code == 403
    assert client.post("/t/acme/apps/concierge_app/pause/").status_code == 403
    assert not App.objects.filter(paused_at__isnull=False).exists()
