"""The API keys page: a key is shown once, works against the API, and stops working when revoked."""

from django.urls import reverse

from memadmin.memory.models import AuditEvent
from tenants.models import TenantAPIKey
from tests.tenants.views.conftest import login


def test_admin_creates_a_key_shown_once_that_works_until_revoked(client, world):
    login(client, world.acme_admin)
    response = client.post(reverse("api_key_new", args=["acme"]), {"name": "crm", "apps": ["concierge_app"]})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    key = response.context["new_key"]["key"]
    row = TenantAPIKey.objects.get(tenant=world.acme, name="crm")
    assert key.startswith(row.prefix) and key not in row.hashed_key
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
