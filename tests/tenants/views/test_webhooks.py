"""The webhooks pages (tenants/views/webhooks.py): create (secret shown once), edit, test event against a real
receiver, rotate, delete (confirmed), the delivery log."""

import ipaddress
import re

import pytest
import standardwebhooks
from django.urls import reverse

from memadmin.memory import services as memory
from memadmin.memory.models import AuditEvent
from tenants.scoping import scope_for_membership
from tenants.webhooks import services
from tenants.webhooks.delivery import webhook_deliver
from tenants.webhooks.models import Webhook
from tests.support.dashboard import login


@pytest.fixture
def admin(client, world):
    login(client, world.acme_admin)
    return client


def _create(client, **data):
    body = {"name": "crm", "url": "https://hooks.example.com/in", "event_types": ["memory_add", "user.erased"], **data}
    return client.post(reverse("webhook_new", args=["acme"]), body)


def test_create_shows_the_secret_once(admin, world):
    response = _create(admin, apps=["concierge_app"], include_text="on")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    webhook = Webhook.objects.get()
    page = response.content.decode()
    assert webhook.secret in page and "not shown again" in page
    assert (webhook.event_types, webhook.include_text) == (["memory_add", "user.erased"], True)
    assert [a.app_id for a in webhook.apps.all()] == ["concierge_app"]
    later = admin.get(reverse("webhook", args=["acme", webhook.pk])).content.decode()
    assert webhook.secret not in later and "https://hooks.example.com/in" in later
    listing = admin.get(reverse("webhooks", args=["acme"])).content.decode()
    assert "crm" in listing and webhook.secret not in listing


@pytest.mark.parametrize(
    "data,message",
    [
        ({"url": "https://10.0.0.1/"}, "private or local"),
        ({"url": "ftp://x.example/"}, "https://"),
        ({"event_types": []}, "event_types must be a list"),
        ({"name": ""}, "name must be 1 to 100"),
        ({"apps": ["no_such_app"]}, "no active app no_such_app"),
    ],
)
def test_bad_input_is_a_400_form_error(admin, data, message):
    response = _create(admin, **data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Webhook.objects.exists()


def test_edit_turn_off_and_on(admin, world):
    _create(admin)
    webhook = Webhook.objects.get()
    url = reverse("webhook_edit", args=["acme", webhook.pk])
    response = admin.post(url, {"name": "crm2", "url": "https://hooks.example.com/v2", "event_types": "memory_delete"})
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert (webhook.name, webhook.url, webhook.event_types, webhook.is_active) == (
        "crm2",
        "https://hooks.example.com/v2",
        ["memory_delete"],
        False,
    )
    admin.post(url, {"name": "crm2", "url": webhook.url, "event_types": "memory_delete", "is_active": "on"})
    webhook.refresh_from_db()
    assert webhook.is_active
    bad = admin.post(url, {"name": "crm2", "url": "https://169.254.169.254/", "event_types": "memory_delete"})
    assert bad.status_code == 400 and "link-local" in bad.content.decode()


def test_send_a_test_event_to_a_real_receiver(admin, world, receiver):
    _create(admin, url=receiver.url)
    webhook = Webhook.objects.get()
    response = admin.post(reverse("webhook_test", args=["acme", webhook.pk]), follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][1] == 302  # POST-redirect-GET: a reload does not send it again
    assert response.status_code == 200 and "Test event delivered: HTTP 200" in page
    [request] = receiver.wait_for(1)
    payload = standardwebhooks.Webhook(webhook.secret).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test" and payload["data"]["webhook_id"] == str(webhook.pk)
    receiver.reply(500)
    page = admin.post(reverse("webhook_test", args=["acme", webhook.pk]), follow=True).content.decode()
    assert "Test event not delivered: HTTP 500" in page
    webhook.refresh_from_db()
    assert webhook.failed_deliveries == 0  # a test never counts toward turning it off


def test_the_delivery_log_shows_status_latency_and_attempts(admin, world, receiver, settings):
    _create(admin, url=receiver.url)
    webhook = Webhook.objects.get()
    memory.memory_add(
        scope=scope_for_membership(world.acme_admin),
        app_id="concierge_app",
        user_id="alice",
        messages="SECRET-TEXT tea",
    )
    receiver.reply(503)
    webhook_deliver(delivery_id=webhook.deliveries.get().pk)
    page = admin.get(reverse("webhook", args=["acme", webhook.pk])).content.decode()
    assert "memory_add" in page and "retrying" in page and "503" in page and "every 3s" in page
    assert "SECRET-TEXT" not in page
    fragment = admin.get(reverse("webhook", args=["acme", webhook.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="delivery-log"') and "503" in fragment


def test_rotate_needs_confirmation_and_shows_the_new_secret(admin, world):
    _create(admin)
    webhook = Webhook.objects.get()
    old = webhook.secret
    url = reverse("webhook_rotate", args=["acme", webhook.pk])
    assert admin.post(url).status_code == 400
    response = admin.post(url, {"confirm": "yes"})
    webhook.refresh_from_db()
    assert webhook.secret != old and webhook.secret in response.content.decode()
    assert AuditEvent.objects.filter(action="webhook.rotate_secret").exists()


def test_delete_needs_confirmation(admin, world):
    _create(admin)
    webhook = Webhook.objects.get()
    url = reverse("webhook_delete", args=["acme", webhook.pk])
    assert admin.post(url).status_code == 400 and Webhook.objects.exists()
    assert admin.post(url, {"confirm": "yes"}).status_code == 302
    assert not Webhook.objects.exists()


def test_another_tenants_webhook_is_404(admin, world, settings):
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
    theirs = services.webhook_create(
        scope=scope_for_membership(world.globex_admin),
        name="g",
        url="https://hooks.example.com/g",
        event_types=["memory_add"],
    )
    for name in ("webhook", "webhook_edit", "webhook_test", "webhook_rotate", "webhook_delete"):
        url = reverse(name, args=["acme", theirs.pk])
        response = admin.get(url) if name == "webhook" else admin.post(url, {"confirm": "yes", "name": "x"})
        assert response.status_code == 404, name
    assert Webhook.objects.get().name == "g"


def test_event_types_read_as_words_whatever_their_code_style(client, world):
    Webhook.objects.create(
        tenant=world.acme,
        name="crm",
        url="https://hooks.example.com/in",
        secret=services.new_secret(),
        event_types=["memory_add", "user.erased"],
        created_by="x",
    )
    login(client, world.acme_admin)
    html = client.get("/t/acme/webhooks/").content.decode()
    cell = re.search(r'data-testid="webhook-events">(.*?)</td>', html).group(1)
    assert re.sub(r"<[^>]+>", "", cell) == "Memory added, End user erased"
    assert '<span title="user.erased">' in cell  # the code a receiver matches on, on hover
