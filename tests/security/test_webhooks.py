"""Webhooks, role x tenant x key kind: who may list, create, change and delete which tenant's webhooks (API and
dashboard), and what an app-restricted key can reach. The hostile matrix covers the same routes generically."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tenants.models import Webhook
from tenants.webhooks.services import new_secret
from tests.support.hostile import OUTSIDE_CONCIERGE, assert_json_error, marker, principals, send


@pytest.fixture
def hooks(hostile_world, settings):
    settings.MEMADMIN_API_RATE = None
    made = {}
    for tenant in hostile_world.tenants:
        wide = Webhook.objects.create(tenant=tenant, name=f"{marker(tenant)} wide {OUTSIDE_CONCIERGE}",
                                      url=f"https://{tenant.slug}.invalid/w", event_types=["memory_add"],
                                      secret=new_secret(), created_by="test")  # fmt: skip
        bound = Webhook.objects.create(tenant=tenant, name=f"{marker(tenant)} concierge", secret=new_secret(),
                                       url=f"https://{tenant.slug}.invalid/c", event_types=["memory_add"],
                                       created_by="test")  # fmt: skip
        bound.apps.set([tenant.apps.get(app_id="concierge_app")])
        made[tenant.slug] = (wide, bound)
    return made


# principal name -> (list own project, list the other tenant's project)
LIST = {
    "acme:admin": (200, 404), "acme:support": (403, 403), "acme:viewer": (403, 403), "acme:key": (200, 404),
    "acme:key-restricted": (200, 404), "acme:end-user": (401, 401), "outsider": (403, 403),
    "anonymous": (401, 401), "bad-key": (401, 401),
}  # fmt: skip
# principal name -> (update acme's tenant-wide webhook, acme's concierge-bound one, globex's)
UPDATE = {
    "acme:admin": (200, 200, 404), "acme:support": (403, 403, 403), "acme:viewer": (403, 403, 403),
    "acme:key": (200, 200, 404), "acme:key-restricted": (404, 200, 404), "acme:end-user": (401, 401, 401),
    "outsider": (403, 403, 403), "anonymous": (401, 401, 401), "bad-key": (401, 401, 401),
}  # fmt: skip


def test_api_list_by_principal(hostile_world, hooks):
    for who in principals(hostile_world, hostile_world.acme):
        for project, expected in zip(("acme", "globex"), LIST[who.name]):
            response = send(who.client, "get", f"/api/v1/webhooks/projects/{project}/")
            assert response.status_code == expected, (who.name, project, response.content[:200])
            body = response.content.decode()
            assert marker(hostile_world.globex) not in body
            if expected != 200:
                assert_json_error(response)
                continue
            names = [w["name"] for w in json.loads(body)]
            if who.name == "acme:key-restricted":
                assert names == [hooks["acme"][1].name] and OUTSIDE_CONCIERGE not in body
            else:
                assert sorted(names) == sorted(w.name for w in hooks["acme"])
            assert "whsec_" not in body  # the secret is shown once, at creation


def test_api_update_and_delete_by_principal(hostile_world, hooks):
    targets = (*hooks["acme"], hooks["globex"][0])
    for who in principals(hostile_world, hostile_world.acme):
        for webhook, expected in zip(targets, UPDATE[who.name]):
            path = f"/api/v1/webhooks/{webhook.pk}/"
            response = send(who.client, "put", path, {"url": "https://attacker.example/x"})
            assert response.status_code == expected, (who.name, webhook.name, response.content[:200])
            # DELETE answers like PUT, except that it really deletes: check on a copy's fate below.
            if expected != 200:
                assert send(who.client, "delete", path).status_code == expected, (who.name, webhook.name)
    # Globex's webhook was neither redirected nor deleted by anyone of Acme.
    theirs = Webhook.objects.get(pk=hooks["globex"][0].pk)
    assert theirs.url == "https://globex.invalid/w"


def test_api_create_by_principal_binds_restricted_keys(hostile_world, hooks):
    body = {"name": "new", "url": "https://hooks.example.com/in", "event_types": ["memory_add"]}
    expected = {"acme:admin": 201, "acme:key": 201, "acme:key-restricted": 201, "acme:support": 403,
                "acme:viewer": 403, "acme:end-user": 401, "outsider": 403, "anonymous": 401, "bad-key": 401}
    for who in principals(hostile_world, hostile_world.acme):
        response = send(who.client, "post", "/api/v1/webhooks/projects/acme/", body)
        assert response.status_code == expected[who.name], (who.name, response.content[:200])
        other = send(who.client, "post", "/api/v1/webhooks/projects/globex/", body)
        assert other.status_code in (401, 403, 404), (who.name, other.status_code)
        if response.status_code == 201:
            created = json.loads(response.content)
            assert created["apps"] == (["concierge_app"] if who.name == "acme:key-restricted" else [])
    assert not Webhook.objects.filter(tenant=hostile_world.globex, name="new").exists()


@pytest.mark.parametrize("name", ["webhooks", "webhook", "webhook_edit", "webhook_test", "webhook_rotate",
                                  "webhook_delete"])  # fmt: skip
def test_dashboard_by_role_and_tenant(hostile_world, hooks, staff_client, name):
    for role in ("admin", "support", "viewer"):
        client = staff_client("acme", role)
        for slug, own in (("acme", True), ("globex", False)):
            args = [slug] if name == "webhooks" else [slug, hooks[slug][0].pk]
            url = reverse(name, args=args)
            response = client.get(url) if name in ("webhooks", "webhook") else client.post(url, {"confirm": "yes"})
            if not own:
                expected = 404  # not a member of globex: the tenant and its webhooks do not exist for them
            elif role != "admin":
                expected = 403
            else:
                expected = {"webhook_edit": 400, "webhook_delete": 302, "webhook_test": 302}.get(name, 200)
            assert response.status_code == expected, (role, slug, name, response.status_code)
            assert marker(hostile_world.globex) not in response.content.decode()
