"""The official MemoryClient and AsyncMemoryClient's webhook methods against a live server."""

import pytest
from mem0 import AsyncMemoryClient
from mem0.exceptions import AuthenticationError, MemoryNotFoundError, ValidationError

from memadmin.memory.models import AuditEvent
from tenants.webhooks.models import Webhook, WebhookDelivery
from tests.concurrency import run_coroutine

pytestmark = pytest.mark.django_db(transaction=True)

URL = "https://hooks.example.com/memadmin"


def test_get_create_update_delete_with_the_official_client(live_world, memory_client):
    client = memory_client(live_world.acme_key)
    assert client.get_webhooks(project_id=client.project_id) == []
    created = client.create_webhook(
        url=URL, name="crm-sync", project_id=client.project_id, event_types=["memory:add", "user.erased"]
    )
    assert created["secret"].startswith("whsec_") and created["project"] == "acme"
    assert created["event_types"] == ["memory_add", "user.erased"] and created["is_active"] is True
    [listed] = client.get_webhooks(project_id="acme")
    assert listed["webhook_id"] == created["webhook_id"] and "secret" not in listed
    assert set(listed) >= {
        "webhook_id",
        "name",
        "url",
        "event_types",
        "is_active",
        "project",
        "created_at",
        "updated_at",
    }  # Mem0's documented fields
    answer = client.update_webhook(webhook_id=created["webhook_id"], name="crm", event_types=["memory_delete"])
    assert answer == {"message": "Webhook updated successfully"}
    [listed] = client.get_webhooks(project_id="acme")
    assert (listed["name"], listed["event_types"], listed["url"]) == ("crm", ["memory_delete"], URL)
    assert client.delete_webhook(webhook_id=created["webhook_id"]) == {"message": "Webhook deleted successfully"}
    assert client.get_webhooks(project_id="acme") == []
    actions = set(AuditEvent.objects.filter(tenant=live_world.acme).values_list("action", flat=True))
    assert {"webhook.create", "webhook.update", "webhook.delete"} <= actions


def test_the_async_client_too(live_world, live_server):
    async def flow():
        client = AsyncMemoryClient(api_key=live_world.acme_key, host=live_server.url)
        try:
            created = await client.create_webhook(
                url=URL, name="async", project_id=client.project_id, event_types=["memory_update"]
            )
            assert [w["name"] for w in await client.get_webhooks(project_id=client.project_id)] == ["async"]
            await client.update_webhook(webhook_id=int(created["webhook_id"]), url=URL + "/v2")
            hooks = await client.get_webhooks(project_id=client.project_id)
            assert hooks[0]["url"] == URL + "/v2"
            assert (await client.delete_webhook(webhook_id=created["webhook_id"]))["message"]
        finally:
            await client.async_client.aclose()

    run_coroutine(flow())
    assert not Webhook.objects.exists()


def test_refusals_are_clear_errors(live_world, memory_client):
    client = memory_client(live_world.acme_key)
    with pytest.raises(ValidationError, match="memory_categorize: memadmin does not categorize"):
        client.create_webhook(url=URL, name="x", project_id="acme", event_types=["memory_categorize"])
    with pytest.raises(ValidationError, match="private or local"):
        client.create_webhook(url="https://10.0.0.5/x", name="x", project_id="acme", event_types=["memory_add"])
    with pytest.raises(ValidationError, match="link-local"):
        client.create_webhook(url="https://169.254.169.254/", name="x", project_id="acme", event_types=["memory_add"])
    with pytest.raises(ValidationError, match="Unknown event type"):
        client.create_webhook(url=URL, name="x", project_id="acme", event_types=["memory_eaten"])
    # Another tenant's project, or one that does not exist: the same 404.
    for project in ("globex", "nope"):
        with pytest.raises(MemoryNotFoundError, match="project_id is the tenant's slug"):
            client.get_webhooks(project_id=project)
    assert not Webhook.objects.exists()


def test_another_tenants_webhook_is_not_found(live_world, memory_client):
    globex = memory_client(live_world.globex_key)
    theirs = globex.create_webhook(url=URL, name="globex's", project_id="globex", event_types=["memory_add"])
    acme = memory_client(live_world.acme_key)
    with pytest.raises(MemoryNotFoundError):
        acme.update_webhook(webhook_id=theirs["webhook_id"], url="https://attacker.example/")
    with pytest.raises(MemoryNotFoundError):
        acme.delete_webhook(webhook_id=theirs["webhook_id"])
    assert Webhook.objects.get().url == URL


def test_a_restricted_key_sees_only_webhooks_bound_within_its_apps(live_world, memory_client):
    admin_made = memory_client(live_world.acme_key).create_webhook(
        url=URL, name="tenant-wide", project_id="acme", event_types=["memory_add"]
    )
    restricted = memory_client(live_world.make_key(live_world.acme, "concierge-only", [live_world.acme_concierge]))
    own = restricted.create_webhook(url=URL, name="mine", project_id="acme", event_types=["memory_add"])
    assert own["apps"] == ["concierge_app"]
    assert [w["name"] for w in restricted.get_webhooks(project_id="acme")] == ["mine"]
    with pytest.raises(MemoryNotFoundError):
        restricted.delete_webhook(webhook_id=admin_made["webhook_id"])


def test_staff_roles(live_world, api):
    for role, status in (("viewer", 403), ("support", 403), ("admin", 200)):
        api.force_login(getattr(live_world, f"acme_{role}").user)
        response = api.get("/api/v1/webhooks/projects/acme/", HTTP_X_MEMADMIN_TENANT="acme")
        assert response.status_code == status, (role, response.content)


def test_a_bad_key_is_an_authentication_error(live_world, live_server, memory_client):
    client = memory_client(live_world.acme_key)
    client.client.headers["Authorization"] = "Token nope.nope"
    with pytest.raises(AuthenticationError):
        client.get_webhooks(project_id="acme")


def test_api_deletions_of_a_person_are_user_erased_events(live_world, memory_client):
    client = memory_client(live_world.acme_key)
    client.create_webhook(url=URL, name="erasures", project_id="acme", event_types=["user.erased", "memory_delete"])
    for user in ("u_one", "u_two"):
        client.add([{"role": "user", "content": f"{user} likes tea"}], user_id=user)
    client.add([{"role": "user", "content": "a run"}], user_id="u_two", run_id="r1")
    client.delete_all(user_id="u_one")
    client.delete_all(user_id="u_two", run_id="r1")  # a run of the person: memories deleted, not the person
    client.delete_users(user_id="u_two")
    kinds = [
        (d.event_type, d.payload["data"].get("user_id"), d.payload["data"].get("count"))
        for d in WebhookDelivery.objects.order_by("created_at")
    ]
    assert kinds == [
        ("memory_delete", "u_one", 1),
        ("user.erased", "u_one", 1),
        ("memory_delete", "u_two", 1),
        ("memory_delete", "u_two", 1),
        ("user.erased", "u_two", 1),
    ]
