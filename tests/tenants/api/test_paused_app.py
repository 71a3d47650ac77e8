"""A paused app (tenants/pausing.py): every API write answers 423 naming the app, through the official
mem0.MemoryClient; reads keep working; after the resume the same writes go through."""

import pytest
from mem0.exceptions import MemoryError as Mem0Error

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.models import AuditEvent
from tenants.jobs.models import Job
from tenants.pausing import app_pause, app_resume
from tenants.scoping import scope_for_membership
from tests.factories import MembershipFactory

USER = "u_paused"
PAUSED = "App concierge_app is paused: its API writes (adds, updates and deletions) answer 423"

# Every kind of API write, as an app server makes it with mem0.MemoryClient (x: the memory written before the pause).
WRITES = {
    "add": lambda c, x: c.add("I like green tea.", user_id=USER),
    "add to the app by name": lambda c, x: c.add("I like green tea.", user_id=USER, app_id="concierge_app"),
    "update text": lambda c, x: c.update(x, text="I like black tea."),
    "update metadata": lambda c, x: c.update(x, metadata={"k": "v"}),
    "delete": lambda c, x: c.delete(x),
    "delete_all by user": lambda c, x: c.delete_all(user_id=USER),
    "delete_all of the app (offboarding)": lambda c, x: c.delete_all(app_id="concierge_app"),
    "delete_users": lambda c, x: c.delete_users(user_id=USER),
    "batch_update": lambda c, x: c.batch_update([{"memory_id": x, "text": "I like black tea."}]),
    "batch_delete": lambda c, x: c.batch_delete([{"memory_id": x}]),
}


def _admin_scope(world):
    admin = MembershipFactory(tenant=world.acme, role="admin")
    return scope_for_membership(admin)


def _refused_423(call, *args) -> str:
    with pytest.raises(Mem0Error) as info:
        call(*args)
    assert info.value.debug_info["status_code"] == 423, info.value
    return info.value.message


@pytest.mark.django_db(transaction=True)
def test_every_api_write_to_a_paused_app_is_423_reads_work_and_resume_lets_writes_through(live_world, memory_client):
    client = memory_client(live_world.acme_key)
    memory_id = client.add("I like green tea.", user_id=USER)["results"][0]["id"]
    admin = _admin_scope(live_world)
    app_pause(scope=admin, app_id="concierge_app")

    for kind, write in WRITES.items():
        assert PAUSED in _refused_423(write, client, memory_id), kind

    # Nothing changed, nothing was started; reads answer as before.
    assert selectors.memory_count(scope=admin, filters=filter_from_fields(user_id=USER)) == 1
    assert client.get(memory_id)["memory"] == "I like green tea."
    assert [m["id"] for m in client.get_all(filters={"user_id": USER})["results"]] == [memory_id]
    assert client.search("tea", filters={"user_id": USER})["results"][0]["id"] == memory_id
    assert [row["event"] for row in client.history(memory_id)] == ["ADD"]
    assert not Job.objects.filter(kind=Job.Kind.OFFBOARD_APP).exists()
    assert (
        not AuditEvent.objects.filter(actor="key:acme-server")
        .exclude(action__in=("memory.add", "memory.get", "memory.list", "memory.search"))
        .exists()
    )

    # Another app of the tenant is not paused.
    assert client.add("I like coffee.", user_id=USER, app_id="sports_portal")["results"][0]["app_id"] == "sports_portal"

    app_resume(scope=admin, app_id="concierge_app")
    added = client.add("I like oolong.", user_id=USER)["results"]
    assert added[0]["app_id"] == "concierge_app"
    assert client.update(memory_id, text="I like black tea.")["memory"] == "I like black tea."
    assert client.delete(memory_id)["remaining"] == 0


def test_the_423_is_the_json_error_shape_naming_the_app(world, api):
    app_pause(scope=_admin_scope(world), app_id="sports_portal")
    response = api.as_key(world.acme_key).post(
        "/v3/memories/add/", {"messages": "hello", "user_id": USER, "app_id": "sports_portal"}, format="json"
    )
    assert response.status_code == 423
    body = response.json()
    assert body["error"]["code"] == "app_paused" and body["error"]["app_id"] == "sports_portal"
    assert body["detail"].startswith("App sports_portal is paused") and body["detail"] == body["error"]["message"]


def test_staff_still_edit_and_delete_in_a_paused_app(world):
    """The pause stops app servers, not the people who answer for the data."""
    from memadmin.memory import services

    admin = _admin_scope(world)
    record = services.memory_add(scope=admin, app_id="sports_portal", messages="Plays chess", user_id=USER)[0]
    app_pause(scope=admin, app_id="sports_portal")
    admin = _admin_scope(world)  # a scope is built per request, from the app's row
    edited, what = services.memory_edit(
        scope=admin, memory_id=record.id, app_id="sports_portal", text="Plays chess on Fridays", metadata={}
    )
    assert what == "text" and edited.memory == "Plays chess on Fridays"
    assert services.memory_delete(scope=admin, memory_id=record.id).remaining == 0
