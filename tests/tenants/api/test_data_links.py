"""POST /api/v1/data-links/: a signed "your data" link for one end user of the key's tenant."""

from django.utils import timezone

from memadmin.memory.models import AuditEvent
from tenants.links import data_link_verify
from tenants.models import DataLink


def test_issue_a_link_and_open_it(world, api, client):
    response = api.as_key(world.acme_key).post(
        "/api/v1/data-links/", {"user_id": "u_alice", "ttl": 3600}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["url"].startswith("http://testserver/your-data/")
    link = DataLink.objects.get(pk=body["id"])
    assert (link.tenant, link.user_id, link.created_by) == (world.acme, "u_alice", "key:acme-server")
    assert 3500 < (link.expires_at - timezone.now()).total_seconds() <= 3600
    token = body["url"].rstrip("/").rsplit("/", 1)[-1]
    assert data_link_verify(token).pk == link.pk
    assert client.get(body["url"].removeprefix("http://testserver")).status_code == 200
    assert AuditEvent.objects.filter(action="link.issue", user_id="u_alice", actor="key:acme-server").exists()


def test_default_ttl_and_bad_input(world, api):
    api.as_key(world.acme_key)
    body = api.post("/api/v1/data-links/", {"user_id": "u1"}, format="json").json()
    assert 6.9 < (DataLink.objects.get(pk=body["id"]).expires_at - timezone.now()).total_seconds() / 86400 <= 7
    for bad in (
        {},
        {"user_id": "has space"},
        {"user_id": "*"},
        {"user_id": "u1", "ttl": 10},
        {"user_id": "u1", "ttl": 91 * 86400},
    ):
        assert api.post("/api/v1/data-links/", bad, format="json").status_code == 400, bad


def test_only_admins_and_keys_issue_links(world, api):
    api.force_login(world.acme_support.user)
    assert api.post("/api/v1/data-links/", {"user_id": "u1"}, format="json").status_code == 403
    api.force_login(world.acme_admin.user)
    assert api.post("/api/v1/data-links/", {"user_id": "u1"}, format="json").status_code == 201
