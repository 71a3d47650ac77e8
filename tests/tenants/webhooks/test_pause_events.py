"""app.paused and app.resumed: one event each way, from the audit row of the pause (tenants/pausing.py), and an
edit on the memory page is a memory_update event like an API update."""

from __future__ import annotations

from memadmin.memory import services as memory
from tenants.pausing import app_pause, app_resume
from tenants.webhooks.models import WebhookDelivery


def _events():
    return [(d.event_type, d.payload) for d in WebhookDelivery.objects.order_by("created_at")]


def test_pausing_and_resuming_send_one_event_each(world, hook):
    hook()
    paused = app_pause(scope=world.scope(), app_id="sports_portal")
    app_pause(scope=world.scope(), app_id="sports_portal")  # already paused: nothing new
    app_resume(scope=world.scope(), app_id="sports_portal")
    [(first, pause), (second, resume)] = _events()
    assert (first, second) == ("app.paused", "app.resumed")
    assert pause["app_id"] == resume["app_id"] == "sports_portal" and pause["project_id"] == "acme"
    actor = world.scope().actor
    assert pause["data"] == {"app_id": "sports_portal", "actor": actor, "paused_at": paused.paused_at.isoformat()}
    assert resume["data"] == {
        "app_id": "sports_portal",
        "actor": actor,
        "paused_at": paused.paused_at.isoformat(),
        "paused_by": actor,
    }


def test_a_webhook_bound_to_another_app_hears_nothing_of_the_pause(world, hook):
    hook(app_ids=["concierge_app"], name="bound")
    app_pause(scope=world.scope(), app_id="sports_portal")
    assert _events() == []


def test_a_webhook_that_did_not_choose_the_events_gets_none(world, hook):
    hook(events=["memory_add"])
    app_pause(scope=world.scope(), app_id="sports_portal")
    assert _events() == []


def test_an_edit_is_a_memory_update_event(world, hook):
    hook()
    record = memory.memory_add(scope=world.scope(), app_id="concierge_app", user_id="alice", messages="one")[0]
    WebhookDelivery.objects.all().delete()
    memory.memory_edit(
        scope=world.scope(role="support"), memory_id=record.id, app_id="concierge_app", text="two", metadata={}
    )
    [(kind, payload)] = _events()
    assert kind == "memory_update" and payload["event_details"] == {"id": record.id, "event": "UPDATE"}
