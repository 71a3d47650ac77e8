"""Delivering to a REAL local HTTP receiver: signature, retries with back-off, one probe at a time while a
receiver fails, auto-disable, and the limits (redirects, timeouts, response size, refused addresses)."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

import pytest
import standardwebhooks
from django.utils import timezone

from memadmin.memory import services as memory
from memadmin.memory.errors import ValidationError
from memadmin.memory.models import AuditEvent
from tenants.jobs.sweep import jobs_sweep
from tenants.webhooks import services
from tenants.webhooks.delivery import deliveries_dispatch_due, deliveries_prune, retry_delay, sign, webhook_deliver
from tenants.webhooks.models import Webhook, WebhookDelivery
from tests.support.webhooks import pending

WEBHOOKS_DOC = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def documented_verify():
    """The verification snippet of docs/webhooks.md ("Signature and replay"), run as written."""
    block = re.search(r"```python\n(import base64.*?def verify\(secret.*?)```", WEBHOOKS_DOC.read_text(), re.S)
    assert block, "docs/webhooks.md has no webhook verification snippet"
    namespace: dict = {}
    exec(block.group(1), namespace)  # noqa: S102 - our own documentation
    return namespace["verify"]


def add(world, text="SECRET-TEXT alice likes green tea", slug="acme", app_id="concierge_app", user_id="alice"):
    return memory.memory_add(scope=world.scope(slug), app_id=app_id, user_id=user_id, messages=text)[0]


def due_now(delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_a_memory_add_is_delivered_signed_with_ids_only(world, hook, receiver):
    webhook = hook()
    record = add(world)
    [delivery] = pending()
    assert webhook_deliver(delivery_id=delivery.pk) == "succeeded"
    [request] = receiver.wait_for(1)
    # Verified by an independent implementation of Standard Webhooks, and by the documented snippet.
    payload = standardwebhooks.Webhook(webhook.secret).verify(request.body, request.headers)
    documented_verify()(webhook.secret, request.headers, request.body)
    assert payload["type"] == "memory_add" and payload["project_id"] == "acme" and payload["app_id"] == "concierge_app"
    assert payload["data"]["memory_id"] == record.id and payload["data"]["user_id"] == "alice"
    assert payload["event_details"] == {"id": record.id, "event": "ADD"}  # Mem0's shape
    assert request.headers["webhook-id"] == payload["id"] and request.headers["x-memadmin-event"] == "memory_add"
    assert b"SECRET-TEXT" not in request.body and b"green tea" not in request.body
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("succeeded", 1, 200)
    assert delivery.latency_ms is not None and delivery.latency_ms < 2000


def test_the_signature_catches_another_secret_a_changed_body_and_a_replay(world, hook, receiver):
    webhook = hook()
    add(world)
    webhook_deliver(delivery_id=pending()[0].pk)
    [request] = receiver.wait_for(1)
    verify = documented_verify()
    with pytest.raises(ValueError):
        verify(services.new_secret(), request.headers, request.body)
    with pytest.raises(ValueError):
        verify(webhook.secret, request.headers, request.body.replace(b"alice", b"mallory"))
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(webhook.secret).verify(request.body.replace(b"alice", b"mallory"), request.headers)
    # The same body signed ten minutes ago: a valid signature, refused as a replay.
    old = sign(
        secret=webhook.secret,
        msg_id=request.headers["webhook-id"],
        body=request.body.decode(),
        at=datetime.now(dt_timezone.utc) - timedelta(minutes=10),
    )
    with pytest.raises(ValueError, match="replay"):
        verify(webhook.secret, old, request.body)


def test_a_500_is_retried_with_back_off_and_then_delivered(world, hook, receiver, settings):
    settings.MEMADMIN_WEBHOOK_RETRY_BASE_SECONDS = 5
    hook()
    receiver.reply(500)
    add(world)
    [delivery] = pending()
    before = timezone.now()
    assert webhook_deliver(delivery_id=delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 1, 500)
    assert "HTTP 500" in delivery.last_error
    assert 5 <= (delivery.next_attempt_at - before).total_seconds() <= 5.5 + 1
    assert webhook_deliver(delivery_id=delivery.pk) == "skipped"  # not due yet: a duplicate message is a no-op
    due_now(delivery)
    assert webhook_deliver(delivery_id=delivery.pk) == "succeeded"
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # the same event, for idempotent receivers
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("succeeded", 2, 200)
    assert Webhook.objects.get().failed_deliveries == 0


def test_back_off_doubles_with_jitter_and_is_capped(settings):
    settings.MEMADMIN_WEBHOOK_RETRY_BASE_SECONDS = 30
    for attempt in range(1, 7):
        low = 30 * 2 ** (attempt - 1)
        assert low <= retry_delay(attempt) <= low * 1.1
    assert retry_delay(20) == 3600


def test_a_failing_receiver_is_probed_by_one_delivery_while_the_others_wait(world, hook, receiver, settings):
    settings.MEMADMIN_WEBHOOK_RETRY_BASE_SECONDS = 60
    webhook = hook()
    receiver.reply(503)
    add(world, "one")
    add(world, "two")
    add(world, "three")
    first, *others = sorted(pending(), key=lambda d: d.created_at)
    assert webhook_deliver(delivery_id=first.pk) == "retrying"
    assert [webhook_deliver(delivery_id=d.pk) for d in others] == ["waiting", "waiting"]
    assert len(receiver.requests) == 1  # one request per back-off step, not one per event
    assert all(d.attempts == 0 for d in pending(webhook) if d.pk != first.pk)
    due_now(first)
    assert webhook_deliver(delivery_id=first.pk) == "succeeded"
    # Its success released the others: due now.
    assert [webhook_deliver(delivery_id=d.pk) for d in others] == ["succeeded", "succeeded"]
    assert len(receiver.wait_for(4)) == 4


def test_a_probe_that_gives_up_hands_over_to_one_delivery_not_to_all(world, hook, receiver, settings):
    settings.MEMADMIN_WEBHOOK_RETRY_BASE_SECONDS = 60
    settings.MEMADMIN_WEBHOOK_MAX_ATTEMPTS = 2
    hook()
    receiver.reply(503, times=10)
    for text in ("one", "two", "three"):
        add(world, text)
    first, second, third = sorted(pending(), key=lambda d: d.created_at)
    assert webhook_deliver(delivery_id=first.pk) == "retrying"
    assert [webhook_deliver(delivery_id=d.pk) for d in (second, third)] == ["waiting", "waiting"]
    due_now(first)
    assert webhook_deliver(delivery_id=first.pk) == "failed"
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.next_attempt_at <= timezone.now() < third.next_attempt_at  # one new probe, not a herd
    assert webhook_deliver(delivery_id=second.pk) == "retrying"
    assert webhook_deliver(delivery_id=third.pk) == "skipped"
    assert len(receiver.requests) == 3


def test_repeated_failures_disable_the_webhook_and_tell_the_admin(world, hook, receiver, settings, client):
    settings.MEMADMIN_WEBHOOK_MAX_ATTEMPTS = 2
    settings.MEMADMIN_WEBHOOK_DISABLE_AFTER = 2
    settings.MEMADMIN_WEBHOOK_RETRY_BASE_SECONDS = 0
    webhook = hook()
    receiver.reply(500, times=10)
    for text in ("one", "two", "three"):
        add(world, text)
    deliveries = sorted(pending(), key=lambda d: d.created_at)
    for delivery in deliveries[:2]:
        assert webhook_deliver(delivery_id=delivery.pk) == "retrying"
        due_now(delivery)
        assert webhook_deliver(delivery_id=delivery.pk) == "failed"
    webhook.refresh_from_db()
    assert not webhook.is_active and webhook.disabled_at and "2 deliveries in a row failed" in webhook.disabled_reason
    deliveries[2].refresh_from_db()
    assert deliveries[2].state == "cancelled"  # nothing more is sent to it
    assert webhook_deliver(delivery_id=deliveries[2].pk) == "skipped"
    audit = AuditEvent.objects.get(action="webhook.disabled")
    assert audit.tenant_id == world.acme.pk and audit.details["webhook"] == webhook.pk
    assert len(receiver.requests) == 4
    # The dashboard says so, on the webhooks page and the webhook's own.
    client.force_login(world.acme_admin.user)
    page = client.get("/t/acme/webhooks/").content.decode()
    assert "was turned off" in page and "deliveries in a row failed" in page
    page = client.get(f"/t/acme/webhooks/{webhook.pk}/").content.decode()
    assert "after repeated failures" in page and "disabled by failures" in page
    # Enabling it again clears the count.
    services.webhook_update(scope=world.scope(), webhook=webhook, is_active=True)
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.failed_deliveries == 0 and not webhook.disabled_reason


def test_a_success_resets_the_failure_count(world, hook, receiver, settings):
    settings.MEMADMIN_WEBHOOK_MAX_ATTEMPTS = 1
    settings.MEMADMIN_WEBHOOK_DISABLE_AFTER = 2
    webhook = hook()
    receiver.reply(500).reply(200).reply(500)
    for text in ("one", "two", "three"):
        add(world, text)
    results = [webhook_deliver(delivery_id=d.pk) for d in sorted(pending(), key=lambda d: d.created_at)]
    assert results == ["failed", "succeeded", "failed"]
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.failed_deliveries == 1


def test_redirects_are_not_followed(world, hook, receiver):
    hook()
    receiver.reply(302, headers={"Location": receiver.url + "/elsewhere"})
    add(world)
    [delivery] = pending()
    assert webhook_deliver(delivery_id=delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.last_status == 302 and "redirects are not followed" in delivery.last_error
    time.sleep(0.2)
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_a_slow_receiver_is_cut_off_at_the_timeout(world, hook, receiver, settings):
    settings.MEMADMIN_WEBHOOK_TIMEOUT_SECONDS = 1
    hook()
    receiver.reply(200, delay=4)
    add(world)
    [delivery] = pending()
    started = time.monotonic()
    assert webhook_deliver(delivery_id=delivery.pk) == "retrying"
    assert time.monotonic() - started < 2.5
    delivery.refresh_from_db()
    assert "timed out" in delivery.last_error


def test_a_huge_response_is_not_read_nor_kept(world, hook, receiver):
    hook()
    receiver.reply(200, body=b"internal-secret " * 400_000)  # 6.4 MB
    add(world)
    [delivery] = pending()
    started = time.monotonic()
    assert webhook_deliver(delivery_id=delivery.pk) == "succeeded"
    assert time.monotonic() - started < 2
    delivery.refresh_from_db()
    assert "internal-secret" not in f"{delivery.last_error}{delivery.payload}"


def test_private_targets_are_refused_unless_allowed(world, hook, receiver, settings):
    webhook = hook()
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = ()
    with pytest.raises(ValidationError, match="private or local"):
        services.webhook_create(scope=world.scope(), name="x", url=receiver.url, event_types=["memory_add"])
    # Saved while allowed (or a name that now resolves somewhere private): refused at delivery, nothing sent.
    add(world)
    [delivery] = pending(webhook)
    assert webhook_deliver(delivery_id=delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("refused:") and "private or local" in delivery.last_error
    assert receiver.requests == []


def test_memory_text_only_for_a_webhook_that_opted_in_and_never_stored(world, hook, receiver):
    plain = hook(name="plain")
    with_text = hook(name="with text", include_text=True)
    record = add(world, "SECRET-TEXT alice is vegetarian")
    deliveries = {d.webhook_id: d for d in pending()}
    for delivery in deliveries.values():
        assert "SECRET-TEXT" not in str(delivery.payload)
        assert webhook_deliver(delivery_id=delivery.pk) == "succeeded"
    bodies = {r.headers["webhook-signature"]: r for r in receiver.wait_for(2)}
    texts = {}
    for request in bodies.values():
        for webhook in (plain, with_text):
            try:
                payload = standardwebhooks.Webhook(webhook.secret).verify(request.body, request.headers)
            except standardwebhooks.webhooks.WebhookVerificationError:
                continue
            texts[webhook.pk] = payload["event_details"].get("data")
    assert texts == {plain.pk: None, with_text.pk: {"memory": "SECRET-TEXT alice is vegetarian"}}
    # The delivery that carried the text is an access to alice's data, on her "who looked" list; the plain
    # one carried none.
    from memadmin.memory.models import AuditEvent
    from tenants.transparency import person_accesses

    [sent] = AuditEvent.objects.filter(action="webhook.text_sent")
    assert (sent.user_id, sent.memory_ids, sent.actor) == ("alice", [record.id], "webhook:with text")
    lines = [f"{g['who']} {g['what']}" for g in person_accesses(tenant=sent.tenant, user_id="alice")["accesses"]]
    assert "A webhook (with text) sent the text of 1 of your memories to its receiver" in lines
    # Erased before its delivery: sent as null, never from a copy.
    memory.memory_update(scope=world.scope(), memory_id=record.id, text="changed")
    memory.memory_delete(scope=world.scope(), memory_id=record.id)
    update = next(d for d in pending(with_text) if d.event_type == "memory_update")
    assert webhook_deliver(delivery_id=update.pk) == "succeeded"
    payload = receiver.wait_for(3)[-1].json
    assert payload["type"] == "memory_update" and payload["event_details"]["data"] == {"memory": None}


def test_a_deleted_webhook_takes_its_pending_deliveries_with_it(world, hook, receiver):
    webhook = hook()
    add(world)
    [delivery] = pending()
    services.webhook_delete(scope=world.scope(), webhook=webhook)
    assert webhook_deliver(delivery_id=delivery.pk) == "skipped"
    assert receiver.requests == []


def test_the_sweep_resends_lost_messages_and_prunes_the_log(world, hook):
    hook()
    add(world)
    [delivery] = pending()
    assert delivery.enqueued_at is None  # the commit hook never ran inside this test's transaction
    assert jobs_sweep()["webhook_deliveries"] == 1
    delivery.refresh_from_db()
    assert delivery.enqueued_at is not None
    assert deliveries_dispatch_due() == 0  # its message is on its way
    month_ago = timezone.now() - timedelta(days=31)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=month_ago)
    assert deliveries_prune() == 0  # a pending delivery is never pruned
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state="succeeded")
    assert deliveries_prune() == 1 and not WebhookDelivery.objects.exists()
