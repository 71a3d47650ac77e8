"""Webhooks, role x tenant x key kind: who may list, create, change and delete which tenant's webhooks (API and
dashboard), and what an app-restricted key can reach. The hostile matrix covers the same routes generically."""

from __future__ import annotations

import ipaddress
import json
import socket

import pytest
from django.urls import reverse

from memadmin.memory.embedded import free_port
from tenants.webhooks.delivery import AttemptFailed, post
from tenants.webhooks.models import Webhook
from tenants.webhooks.services import new_secret
from tenants.webhooks.targets import TargetRefused, target_parse, target_resolve
from tests.support.hostile import OUTSIDE_CONCIERGE, api_client, assert_json_error, marker, principals, send


@pytest.fixture
def hooks(hostile_world, settings):
    settings.MEMADMIN_API_RATE = None
    made = {}
    for tenant in hostile_world.tenants:
        wide = Webhook.objects.create(
            tenant=tenant,
            name=f"{marker(tenant)} wide {OUTSIDE_CONCIERGE}",
            url=f"https://{tenant.slug}.invalid/w",
            event_types=["memory_add"],
            secret=new_secret(),
            created_by="test",
        )
        bound = Webhook.objects.create(
            tenant=tenant,
            name=f"{marker(tenant)} concierge",
            secret=new_secret(),
            url=f"https://{tenant.slug}.invalid/c",
            event_types=["memory_add"],
            created_by="test",
        )
        bound.apps.set([tenant.apps.get(app_id="concierge_app")])
        made[tenant.slug] = (wide, bound)
    return made


# principal name -> (list own project, list the other tenant's project)
LIST = {
    "acme:admin": (200, 404),
    "acme:support": (403, 403),
    "acme:viewer": (403, 403),
    "acme:key": (200, 404),
    "acme:key-restricted": (200, 404),
    "acme:end-user": (401, 401),
    "outsider": (403, 403),
    "anonymous": (401, 401),
    "bad-key": (401, 401),
    "acme:key-read-only": (403, 403),
    "acme:key-expired": (401, 401),
}
# principal name -> (update acme's tenant-wide webhook, acme's concierge-bound one, globex's)
UPDATE = {
    "acme:admin": (200, 200, 404),
    "acme:support": (403, 403, 403),
    "acme:viewer": (403, 403, 403),
    "acme:key": (200, 200, 404),
    "acme:key-restricted": (404, 200, 404),
    "acme:end-user": (401, 401, 401),
    "outsider": (403, 403, 403),
    "anonymous": (401, 401, 401),
    "bad-key": (401, 401, 401),
    "acme:key-read-only": (403, 403, 403),
    "acme:key-expired": (401, 401, 401),
}


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
    expected = {
        "acme:admin": 201,
        "acme:key": 201,
        "acme:key-restricted": 201,
        "acme:support": 403,
        "acme:viewer": 403,
        "acme:end-user": 401,
        "outsider": 403,
        "anonymous": 401,
        "bad-key": 401,
        "acme:key-read-only": 403,
        "acme:key-expired": 401,
    }
    for who in principals(hostile_world, hostile_world.acme):
        response = send(who.client, "post", "/api/v1/webhooks/projects/acme/", body)
        assert response.status_code == expected[who.name], (who.name, response.content[:200])
        other = send(who.client, "post", "/api/v1/webhooks/projects/globex/", body)
        assert other.status_code in (401, 403, 404), (who.name, other.status_code)
        if response.status_code == 201:
            created = json.loads(response.content)
            assert created["apps"] == (["concierge_app"] if who.name == "acme:key-restricted" else [])
    assert not Webhook.objects.filter(tenant=hostile_world.globex, name="new").exists()


@pytest.mark.parametrize(
    "name", ["webhooks", "webhook", "webhook_edit", "webhook_test", "webhook_rotate", "webhook_delete"]
)
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


UNBALANCED = ["https://[::1/", "http://[127.0.0.1]/", "https://[/x", "https://]x[/", "https://[fe80::1%25eth0/"]
WRITERS = ("acme:admin", "acme:key", "acme:key-restricted")


def test_unbalanced_brackets_are_a_400_in_the_api_for_every_writer(hostile_world, hooks):
    for who in principals(hostile_world, hostile_world.acme, anonymous=False):
        if who.name not in WRITERS:
            continue
        own = hooks["acme"][1]  # the concierge-bound one: every writer may change it
        for url in UNBALANCED:
            body = {"name": "new", "url": url, "event_types": ["memory_add"]}
            created = assert_json_error(send(who.client, "post", "/api/v1/webhooks/projects/acme/", body), 400)
            assert created["error"]["field"] == "url" and "invalid host" in created["detail"], (who.name, url)
            for method in ("put",):
                updated = send(who.client, method, f"/api/v1/webhooks/{own.pk}/", {"url": url})
                assert "invalid host" in assert_json_error(updated, 400)["detail"], (who.name, method, url)
    assert not Webhook.objects.filter(name="new").exists()
    assert Webhook.objects.get(pk=hooks["acme"][1].pk).url == "https://acme.invalid/c"


def test_unbalanced_brackets_are_a_form_error_in_both_dashboard_forms(hostile_world, hooks, staff_client):
    client = staff_client("acme", "admin")
    own = hooks["acme"][0]
    for url in UNBALANCED:
        body = {"name": "new", "url": url, "event_types": "memory_add"}
        for form in (reverse("webhook_new", args=["acme"]), reverse("webhook_edit", args=["acme", own.pk])):
            response = client.post(form, body)
            assert response.status_code == 400 and "invalid host" in response.content.decode(), (form, url)
    assert not Webhook.objects.filter(name="new").exists()
    assert Webhook.objects.get(pk=own.pk).url == "https://acme.invalid/w"


def _resolved(name: str) -> set[str]:
    return {info[4][0].split("%")[0] for info in socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)}


def test_a_refusal_never_names_what_an_internal_name_resolves_to(hostile_world, hooks, settings):
    """Which address an internal name has is the operator's network map, not the tenant's to learn by probing."""
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = ()
    resolved = _resolved("localhost")
    assert resolved
    with pytest.raises(TargetRefused) as refused:
        target_resolve(target_parse("https://localhost/hook"))
    assert "localhost resolves to a private or local address" in str(refused.value)
    client = api_client(hostile_world.keys["acme"].full)
    probe = {"name": "probe", "url": "https://localhost/x", "event_types": ["memory_add"]}
    saved = assert_json_error(send(client, "post", "/api/v1/webhooks/projects/acme/", probe), 400)
    assert "localhost resolves to a private or local address" in saved["detail"]
    # Saved while the network was allowed (or the name moved since): refused at delivery, and said without it.
    with pytest.raises(AttemptFailed) as failed:
        post("https://localhost:9/x", b"{}", {})
    for message in (str(refused.value), saved["detail"], failed.value.message):
        assert not any(address in message for address in resolved | {"127.0.0.1", "::1"}), message
    # Allowed, but nothing listening there: the failure names the host, not its address either.
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    with pytest.raises(AttemptFailed) as closed:
        post(f"http://localhost:{free_port()}/x", b"{}", {})
    assert "could not connect" in closed.value.message and "localhost" in closed.value.message
    assert not any(address in closed.value.message for address in resolved | {"127.0.0.1", "::1"})
    # An address the caller typed is theirs to see.
    with pytest.raises(AttemptFailed) as typed:
        post(f"http://127.0.0.1:{free_port()}/x", b"{}", {})
    assert "127.0.0.1" in typed.value.message
