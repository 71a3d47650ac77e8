"""The API keys page: a key is shown once, works against the API, and stops working when revoked."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from memadmin.memory.models import AuditEvent
from tenants.models import TenantAPIKey
from tests.support.dashboard import HTMX, login


def test_admin_creates_a_key_shown_once_that_works_until_revoked(client, world):
    login(client, world.acme_admin)
    response = client.post(reverse("api_key_new", args=["acme"]), {"name": "crm", "apps": ["concierge_app"]})
    # Post-redirect-get: a reload of the page that shows the key cannot create a second one.
    assert response.status_code == 302 and response.url == reverse("api_keys", args=["acme"])
    shown = client.get(response.url)
    assert shown["Cache-Control"] == "no-store"
    key = shown.context["new_key"]["key"]
    row = TenantAPIKey.objects.get(tenant=world.acme, name="crm")
    assert key.startswith(row.prefix) and key not in row.hashed_key and key in shown.content.decode()
    assert list(row.apps.values_list("app_id", flat=True)) == ["concierge_app"]
    listing = client.get(reverse("api_keys", args=["acme"])).content.decode()
    assert row.prefix in listing and key not in listing  # never shown again

    api = client.get("/v1/ping/", HTTP_AUTHORIZATION=f"Token {key}")
    assert api.status_code == 200

    revoked = client.post(reverse("api_key_revoke", args=["acme", row.prefix]))
    assert revoked.status_code == 302
    assert client.get("/v1/ping/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401
    actions = set(AuditEvent.objects.filter(tenant=world.acme).values_list("action", flat=True))
    assert {"apikey.create", "apikey.revoke"} <= actions


def test_bad_key_requests_are_form_errors(client, world):
    login(client, world.acme_admin)
    no_name = client.post(reverse("api_key_new", args=["acme"]), {"name": "  "})
    assert no_name.status_code == 400 and b"needs a name" in no_name.content
    other_app = client.post(reverse("api_key_new", args=["acme"]), {"name": "x", "apps": ["nope"]})
    assert other_app.status_code == 400 and b"no active app nope" in other_app.content
    assert not TenantAPIKey.objects.filter(tenant=world.acme).exists()


def test_another_tenants_key_cannot_be_revoked(client, world):
    theirs, key = TenantAPIKey.objects.create_key(name="theirs", tenant=world.globex)
    login(client, world.acme_admin)
    assert client.post(reverse("api_key_revoke", args=["acme", theirs.prefix])).status_code == 404
    theirs.refresh_from_db()
    assert not theirs.revoked


def test_key_names_are_unique_among_a_tenants_active_keys(client, world):
    login(client, world.acme_admin)
    url = reverse("api_key_new", args=["acme"])
    assert client.post(url, {"name": "crm"}).status_code == 302
    again = client.post(url, {"name": " crm "})  # the reload of a form, or a second admin
    assert again.status_code == 400 and "An active key named “crm” already exists" in again.content.decode()
    assert b'value=" crm "' in again.content and b'aria-invalid="true"' in again.content  # kept, marked
    assert TenantAPIKey.objects.filter(tenant=world.acme, name="crm").count() == 1
    # Another tenant may use the name; a revoked key frees it (a rotated key keeps its name).
    TenantAPIKey.objects.create_key(name="crm", tenant=world.globex)
    first = TenantAPIKey.objects.get(tenant=world.acme, name="crm")
    client.post(reverse("api_key_revoke", args=["acme", first.prefix]))
    assert client.post(url, {"name": "crm"}).status_code == 302
    assert TenantAPIKey.objects.filter(tenant=world.acme, name="crm", revoked=False).count() == 1


def test_the_database_refuses_two_active_keys_with_one_name(world):
    from django.db import IntegrityError, transaction

    TenantAPIKey.objects.create_key(name="crm", tenant=world.acme)
    with pytest.raises(IntegrityError), transaction.atomic():
        TenantAPIKey.objects.create_key(name="crm", tenant=world.acme)


def test_revoking_with_htmx_swaps_only_the_row_and_it_says_revoked(client, world):
    row, _key = TenantAPIKey.objects.create_key(name="crm", tenant=world.acme)
    login(client, world.acme_admin)
    response = client.post(reverse("api_key_revoke", args=["acme", row.prefix]), HTTP_HX_TARGET="", **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith(f'<tr data-key="{row.prefix}">') and "<html" not in body and "<header" not in body
    assert "revoked</span>" in body and "Revoke</button>" not in body
    assert 'hx-swap-oob="beforeend"' in body and "is revoked" in body  # the message, out of band
    row.refresh_from_db()
    assert row.revoked


def test_a_failed_revoke_over_htmx_is_a_toast_not_a_row(client, world):
    login(client, world.acme_admin)
    response = client.post(reverse("api_key_revoke", args=["acme", "gone1234"]), **HTMX)  # the row has no id
    assert response.status_code == 404 and response["HX-Retarget"] == "#toasts"
    assert "<tr" not in response.content.decode()


def test_offboarding_by_key_is_chosen_at_creation_and_turned_on_and_off(client, world):
    """delete_all(app_id=...) with a key offboards that app unless its admin turned it off; the API answers 403 with
    the reason then. A key restricted to some apps never may, and cannot be turned on."""
    login(client, world.acme_admin)
    client.post(reverse("api_key_new", args=["acme"]), {"name": "careful"})  # checkbox not sent: off
    shown = client.get(reverse("api_keys", args=["acme"]))
    key = shown.context["new_key"]["key"]
    row = TenantAPIKey.objects.get(tenant=world.acme, name="careful")
    assert row.may_offboard is False
    refused = client.delete("/v1/memories/?app_id=sports_portal", HTTP_AUTHORIZATION=f"Token {key}")
    assert refused.status_code == 403 and "turned off for this key" in refused.json()["detail"]

    url = reverse("api_key_offboarding", args=["acme", row.prefix])
    assert client.get(url).status_code == 405
    assert client.post(url, {"allowed": "maybe"}).status_code == 400
    swapped = client.post(url, {"allowed": "on"}, **HTMX)
    assert swapped.status_code == 200 and "may now offboard" in swapped.content.decode()
    row.refresh_from_db()
    assert row.may_offboard is True
    assert AuditEvent.objects.filter(action="apikey.offboarding_on", details__prefix=row.prefix).exists()
    assert client.post(url, {"allowed": "off"}).status_code == 302
    row.refresh_from_db()
    assert row.may_offboard is False

    client.post(
        reverse("api_key_new", args=["acme"]), {"name": "narrow", "apps": ["concierge_app"], "may_offboard": "on"}
    )
    narrow = TenantAPIKey.objects.get(tenant=world.acme, name="narrow")
    assert narrow.may_offboard is False  # restricted keys never may, whatever the form said
    answer = client.post(reverse("api_key_offboarding", args=["acme", narrow.prefix]), {"allowed": "on"})
    assert answer.status_code == 400 and b"restricted to some apps" in answer.content


@pytest.mark.parametrize("who, status", [("acme_viewer", 403), ("acme_support", 403), ("globex_admin", 404)])
def test_only_the_tenants_admins_turn_offboarding_on(client, world, who, status):
    row, _ = TenantAPIKey.objects.create_key(name="k", tenant=world.acme, may_offboard=False)
    login(client, getattr(world, who))
    url = reverse("api_key_offboarding", args=["acme", row.prefix])
    assert client.post(url, {"allowed": "on"}).status_code == status
    row.refresh_from_db()
    assert row.may_offboard is False


def test_apps_are_checkboxes_and_a_key_can_be_read_only_and_expire(client, world):
    login(client, world.acme_admin)
    page = client.get(reverse("api_keys", args=["acme"])).content.decode()
    assert '<select id="id_apps"' not in page
    assert page.count('type="checkbox" name="apps"') == 2 and 'name="read_only"' in page
    assert 'name="expires" type="date"' in page
    day = (timezone.localdate() + timedelta(days=30)).isoformat()
    response = client.post(
        reverse("api_key_new", args=["acme"]),
        {"name": "reporting", "read_only": "on", "expires": day, "may_offboard": "on"},
    )
    assert response.status_code == 302
    row = TenantAPIKey.objects.get(tenant=world.acme, name="reporting")
    assert row.read_only and not row.may_offboard  # a read-only key never offboards
    assert timezone.localtime(row.expiry_date).date().isoformat() == day
    listing = client.get(reverse("api_keys", args=["acme"])).content.decode()
    assert 'data-testid="key-access"><span class="badge">read-only</span>' in listing
    expires = (timezone.localdate() + timedelta(days=30)).strftime("%b %-d, %Y")
    assert f'data-testid="key-expires">{expires}<' in listing
    event = AuditEvent.objects.get(action="apikey.create", details__name="reporting")
    assert event.details["read_only"] is True and event.details["expires"].startswith(day)


@pytest.mark.parametrize(
    "expires, message",
    [
        ("2020-01-01", "must be after today"),
        ("tomorrow", "as a date (YYYY-MM-DD)"),
        ("9999-12-31", "at most 3660 days ahead"),
    ],
)
def test_a_bad_expiry_date_is_a_form_error(client, world, expires, message):
    login(client, world.acme_admin)
    response = client.post(
        reverse("api_key_new", args=["acme"]), {"name": "x", "expires": expires, "apps": ["concierge_app"]}
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert 'value="concierge_app" checked' in response.content.decode()  # what was chosen is kept
    assert not TenantAPIKey.objects.filter(tenant=world.acme).exists()


def test_an_expired_key_is_refused_with_the_reason_and_shown_as_expired(client, world):
    row, key = TenantAPIKey.objects.create_key(name="old", tenant=world.acme)
    TenantAPIKey.objects.filter(pk=row.pk).update(expiry_date=timezone.now() - timedelta(days=1))
    response = client.get("/v1/ping/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 401
    assert "This API key (old) expired on" in response.json()["detail"]
    login(client, world.acme_admin)
    listing = client.get(reverse("api_keys", args=["acme"])).content.decode()
    assert 'data-testid="key-status"><span class="badge badge-warn">expired</span>' in listing


def test_a_read_only_key_reads_and_exports_but_every_write_is_refused_by_name(client, world, memories):
    row, key = TenantAPIKey.objects.create_key(name="reader", tenant=world.acme, read_only=True)
    api = {"HTTP_AUTHORIZATION": f"Token {key}", "content_type": "application/json"}
    assert (
        client.post("/v3/memories/search/", {"query": "food", "filters": {"user_id": "alice"}}, **api).status_code
        == 200
    )
    assert client.post("/v3/memories/", {"filters": {"user_id": "alice"}}, **api).status_code == 200
    assert client.get(f"/v1/memories/{memories.bob.id}/", **api).status_code == 200
    assert client.post("/v1/exports/", {"filters": {"user_id": "alice"}}, **api).status_code in (200, 201)
    writes = [
        client.post("/v3/memories/add/", {"messages": "x", "user_id": "alice"}, **api),
        client.put(f"/v1/memories/{memories.bob.id}/", {"text": "changed"}, **api),
        client.delete(f"/v1/memories/{memories.bob.id}/", **api),
        client.delete("/v1/memories/?user_id=alice", **api),
    ]
    for response in writes:
        assert response.status_code == 403, response.content
        assert "This API key is read-only" in response.json()["detail"]
    assert TenantAPIKey.objects.get(pk=row.pk).read_only
    login(client, world.acme_admin)
    assert client.get(reverse("memory", args=["acme", "concierge_app", memories.bob.id])).status_code == 200


def test_createapikey_makes_read_only_and_expiring_keys(world, capsys):
    from django.core.management import call_command

    day = (timezone.localdate() + timedelta(days=7)).isoformat()
    call_command("createapikey", "acme", "--name", "nightly", "--read-only", "--expires", day)
    row = TenantAPIKey.objects.get(tenant=world.acme, name="nightly")
    assert row.read_only and not row.may_offboard and timezone.localtime(row.expiry_date).date().isoformat() == day
    assert "read-only, expires" in capsys.readouterr().err
