"""Which changes make which events: from the audit rows the memory service and the jobs write, for the right
tenant and apps only, in the change's own transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from memadmin.memory import services as memory
from memadmin.memory.errors import NotFound
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.selectors import memory_get
from tenants.jobs.runners import run_job
from tenants.jobs.services import erasure_request, job_erase_user, job_offboard_app
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_api_key
from tenants.webhooks import services
from tenants.webhooks.delivery import webhook_deliver
from tenants.webhooks.models import WebhookDelivery
from tests.support.webhooks import pending


def add(world, text, slug="acme", app_id="concierge_app", user_id="alice", **kw):
    return memory.memory_add(scope=world.scope(slug), app_id=app_id, user_id=user_id, messages=text, **kw)[0]


def events(webhook=None) -> list[tuple[str, dict]]:
    deliveries = WebhookDelivery.objects.order_by("created_at")
    if webhook is not None:
        deliveries = deliveries.filter(webhook=webhook)
    return [(d.event_type, d.payload) for d in deliveries]


def test_add_update_delete_make_one_event_per_memory(world, hook):
    hook()
    record = add(world, "SECRET one")
    memory.memory_update(scope=world.scope(), memory_id=record.id, text="SECRET two")
    memory.memory_delete(scope=world.scope(), memory_id=record.id)
    assert [(t, p["event_details"]) for t, p in events()] == [
        ("memory_add", {"id": record.id, "event": "ADD"}),
        ("memory_update", {"id": record.id, "event": "UPDATE"}),
        ("memory_delete", {"id": record.id, "event": "DELETE"}),
    ]
    assert "SECRET" not in str(events())


def test_a_webhook_gets_only_the_event_types_it_chose(world, hook):
    hook(events=["memory_delete"])
    record = add(world, "x")
    assert events() == []
    memory.memory_delete(scope=world.scope(), memory_id=record.id)
    assert [t for t, _ in events()] == ["memory_delete"]


def test_no_delivery_across_tenants(world, hook, receiver):
    acme = hook("acme")
    globex = hook("globex")
    add(world, "globex's", slug="globex")
    assert [d.webhook_id for d in pending()] == [globex.pk]
    for delivery in pending():
        webhook_deliver(delivery_id=delivery.pk)
    [request] = receiver.wait_for(1)
    assert request.json["project_id"] == "globex"
    assert not WebhookDelivery.objects.filter(webhook=acme).exists()


def test_an_erasure_sends_memory_delete_and_user_erased(world, hook):
    webhook = hook()
    add(world, "a1")
    add(world, "a2", app_id="sports_portal")
    add(world, "bob's", user_id="bob")
    WebhookDelivery.objects.all().delete()
    result = erasure_request(scope=world.scope(), filters=filter_from_fields(user_id="alice"))
    assert result.deleted == 2
    (t1, deleted), (t2, erased) = events(webhook)
    assert (t1, t2) == ("memory_delete", "user.erased")
    assert deleted["data"]["count"] == 2 and deleted["data"]["reason"] == "request"
    assert deleted["data"]["per_app"]["concierge_app"]["memories"] == 1
    assert erased["data"]["user_id"] == "alice" and erased["data"]["count"] == 2
    assert deleted["id"] != erased["id"]


def test_a_deletion_by_run_is_not_an_erasure_of_the_person(world, hook):
    webhook = hook()
    add(world, "r", run_id="run-7")
    add(world, "kept")
    WebhookDelivery.objects.all().delete()
    erasure_request(scope=world.scope(), filters=filter_from_fields(user_id="alice", run_id="run-7"))
    assert [t for t, _ in events(webhook)] == ["memory_delete"]


def test_an_erasure_job_sends_its_receipt(world, hook):
    webhook = hook()
    add(world, "a1")
    add(world, "a2", app_id="sports_portal")
    WebhookDelivery.objects.all().delete()
    job, _ = job_erase_user(scope=world.scope(), user_id="alice")
    assert run_job(job.pk) == "succeeded"
    kinds = dict(events(webhook))
    assert set(kinds) == {"memory_delete", "user.erased"}
    erased = kinds["user.erased"]["data"]
    assert erased["job_id"] == str(job.pk) and erased["receipt"]["remaining"] == 0
    assert erased["receipt"]["totals"]["memories"] == 2 and kinds["memory_delete"]["data"]["reason"] == "erasure"


def test_an_offboarding_sends_app_offboarded_with_the_receipt(world, hook):
    webhook = hook()
    add(world, "x", app_id="sports_portal")
    add(world, "y", app_id="sports_portal", user_id="bob")
    WebhookDelivery.objects.all().delete()
    job, _ = job_offboard_app(scope=world.scope(), app_id="sports_portal", grace_hours=0)
    assert run_job(job.pk) == "succeeded"
    [(kind, payload)] = events(webhook)
    assert kind == "app.offboarded" and payload["app_id"] == "sports_portal"
    assert payload["data"]["count"] == 2 and payload["data"]["receipt"]["kind"] == "offboard_app"
    assert payload["data"]["receipt"]["remaining"] == 0 and payload["data"]["job_id"] == str(job.pk)


def test_a_webhook_bound_to_an_app_hears_only_that_app(world, hook):
    bound = hook(app_ids=["concierge_app"], name="bound")
    add(world, "c")
    add(world, "s", app_id="sports_portal")
    assert [p["app_id"] for _, p in events(bound)] == ["concierge_app"]
    WebhookDelivery.objects.all().delete()
    erasure_request(scope=world.scope(), filters=filter_from_fields(user_id="alice"))
    for _, payload in events(bound):
        assert set(payload["data"]["per_app"]) == {"concierge_app"} and payload["data"]["count"] == 1


def test_an_app_restricted_key_makes_webhooks_bound_to_its_apps(world, receiver):
    row, _ = TenantAPIKey.objects.create_key(name="concierge-only", tenant=world.acme)
    row.apps.set([world.acme_concierge])
    scope = scope_for_api_key(row)
    webhook = services.webhook_create(
        scope=scope, name="k", url=receiver.url, event_types=["memory_add"], within_apps=[world.acme_concierge.pk]
    )
    assert [a.app_id for a in webhook.apps.all()] == ["concierge_app"]
    tenant_wide = services.webhook_create(scope=world.scope(), name="all", url=receiver.url, event_types=["memory_add"])
    assert list(services.webhook_list(scope=scope, within_apps=[world.acme_concierge.pk])) == [webhook]
    with pytest.raises(NotFound):
        services.webhook_get(scope=scope, webhook_id=tenant_wide.pk, within_apps=[world.acme_concierge.pk])


def test_a_change_that_rolls_back_sends_nothing(world, hook):
    hook()
    with pytest.raises(RuntimeError), transaction.atomic():
        add(world, "x")
        assert len(pending()) == 1
        raise RuntimeError("the request failed after the write")
    assert pending() == []


def test_reads_make_no_event_and_cost_no_query(world, hook, django_assert_num_queries):
    hook()
    record = add(world, "x")
    WebhookDelivery.objects.all().delete()
    scope = world.scope()
    with django_assert_num_queries(1):  # the audit INSERT only: no webhook lookup for a read
        memory_get(scope=scope, memory_id=record.id)
    assert pending() == []
