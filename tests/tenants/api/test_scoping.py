"""Cross-tenant isolation on every endpoint, authentication, restricted keys, staff sessions."""

import pytest

from memadmin.memory import selectors, services
from memadmin.memory.models import AuditEvent
from tenants.models import App, TenantAPIKey
from tenants.scoping import scope_for_api_key, scope_for_membership


def _add(tenant, app_id, user_id, text, **ids):
    key = TenantAPIKey.objects.get(tenant=tenant, name=f"{tenant.slug}-server")
    scope = scope_for_api_key(key)
    return services.memory_add(scope=scope, app_id=app_id, messages=text, user_id=user_id, **ids)[0]


@pytest.fixture
def globex_memory(world):
    return _add(world.globex, "other_app", "u_shared", "Globex secret about u_shared", agent_id="g_agent")


def _globex_intact(world, memory):
    scope = scope_for_api_key(TenantAPIKey.objects.get(tenant=world.globex, name="globex-server"))
    return selectors.memory_get(scope=scope, memory_id=memory.id, audit=False).memory == memory.memory


def test_key_of_another_tenant_gets_404_on_every_endpoint(world, api, globex_memory):
    api.as_key(world.acme_key)
    gid = globex_memory.id
    calls = [
        ("get", f"/v1/memories/{gid}/", None),
        ("put", f"/v1/memories/{gid}/", {"text": "stolen"}),
        ("delete", f"/v1/memories/{gid}/", None),
        ("get", f"/v1/memories/{gid}/history/", None),
        ("put", "/v1/batch/", {"memories": [{"memory_id": gid, "text": "stolen"}]}),
        ("delete", "/v1/batch/", {"memories": [{"memory_id": gid}]}),
        ("post", "/v3/memories/", {"filters": {"app_id": "other_app"}}),
        ("post", "/v3/memories/", {"filters": {"OR": [{"user_id": "u_shared"}, {"app_id": {"in": ["other_app"]}}]}}),
        ("post", "/v3/memories/search/", {"query": "secret", "filters": {"app_id": "other_app"}}),
        ("delete", "/v1/memories/?user_id=u_shared&app_id=other_app", None),
        ("post", "/v1/exports/", {"filters": {"app_id": "other_app"}}),
        ("post", "/v1/exports/get/", {"filters": {"app_id": "other_app"}}),
    ]
    for method, url, body in calls:
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.content)
        assert response.json()["error"]["code"] == "not_found"
    assert _globex_intact(world, globex_memory)


def test_another_tenants_export_id_is_not_found(world, api, globex_memory):
    created = api.as_key(world.globex_key).post("/v1/exports/", {"filters": {"user_id": "u_shared"}}, format="json")
    assert created.status_code == 201
    response = api.as_key(world.acme_key).post(
        "/v1/exports/get/", {"memory_export_id": created.json()["id"]}, format="json"
    )
    assert response.status_code == 404
    assert api.post("/v1/exports/get/", {"memory_export_id": "forged"}, format="json").status_code == 404
    mine = api.as_key(world.globex_key).post(
        "/v1/exports/get/", {"memory_export_id": created.json()["id"]}, format="json"
    )
    assert mine.status_code == 200
    body = b"".join(mine.streaming_content)
    assert b"Globex secret" in body


def test_user_ids_are_per_tenant(world, api, globex_memory):
    """The same user_id in another tenant is another person: reads find nothing, deletions delete nothing."""
    acme = _add(world.acme, "concierge_app", "u_shared", "Acme note about u_shared")
    api.as_key(world.acme_key)
    listed = api.post("/v3/memories/", {"filters": {"user_id": "u_shared"}}, format="json").json()
    assert [m["id"] for m in listed["results"]] == [acme.id]
    found = api.post("/v3/memories/search/", {"query": "secret", "filters": {"user_id": "u_shared"}}, format="json")
    assert [m["id"] for m in found.json()["results"]] == [acme.id]
    entities = api.get("/v1/entities/").json()["results"]
    assert ("agent", "g_agent") not in {(e["type"], e["name"]) for e in entities}
    deleted = api.delete("/v1/memories/?user_id=u_shared").json()
    assert deleted["deleted"] == 1 and deleted["remaining"] == 0
    assert api.delete("/v2/entities/agent/g_agent/").json()["deleted"] == 0
    assert _globex_intact(world, globex_memory)


def test_add_naming_another_tenants_app(world, api, globex_memory):
    """App ids are per tenant too: an unknown one is created in the caller's tenant, or refused."""
    api.as_key(world.acme_key)
    world.acme.auto_create_apps = False
    world.acme.save()
    refused = api.post("/v3/memories/add/", {"messages": "hi", "user_id": "u1", "app_id": "other_app"}, format="json")
    assert refused.status_code == 400 and "does not create apps" in refused.json()["detail"]
    world.acme.auto_create_apps = True
    world.acme.save()
    created = api.post("/v3/memories/add/", {"messages": "hi", "user_id": "u1", "app_id": "other_app"}, format="json")
    assert created.status_code == 200
    app = App.objects.get(tenant=world.acme, app_id="other_app")
    assert app.collection_name != world.globex_other.collection_name
    assert _globex_intact(world, globex_memory)


def test_no_key_or_bad_keys_are_401(world, api):
    assert api.get("/v1/ping/").status_code == 401
    response = api.post("/v3/memories/", {"filters": {"user_id": "u1"}}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Token")
    api.credentials(HTTP_AUTHORIZATION="Token not-a-key")
    assert api.get("/v1/ping/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION="Token a b")
    assert api.get("/v1/ping/").status_code == 401
    TenantAPIKey.objects.filter(tenant=world.acme).update(revoked=True)
    response = api.as_key(world.acme_key).get("/v1/ping/")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid or revoked API key."
    assert api.as_key(world.globex_key).get("/v1/ping/").status_code == 200


def test_ping_describes_the_key_and_marks_it_used(world, api):
    assert TenantAPIKey.objects.get(tenant=world.acme).last_used is None
    body = api.as_key(world.acme_key).get("/v1/ping/").json()
    assert body["org_id"] == body["project_id"] == "acme"
    assert body["principal"] == "key:acme-server" and body["role"] == "api"
    assert body["apps"] == ["concierge_app", "sports_portal"]
    assert TenantAPIKey.objects.get(tenant=world.acme).last_used is not None


def test_key_restricted_to_some_apps(world, api):
    key = world.make_key(world.acme, "sports-only", apps=[world.acme_sports])
    concierge = _add(world.acme, "concierge_app", "u1", "concierge fact")
    api.as_key(key)
    assert api.get("/v1/ping/").json()["apps"] == ["sports_portal"]
    assert api.get(f"/v1/memories/{concierge.id}/").status_code == 404
    assert api.post("/v3/memories/", {"filters": {"app_id": "concierge_app"}}, format="json").status_code == 404
    # No app_id: the key's only app, not the tenant's default.
    added = api.post("/v3/memories/add/", {"messages": "run fact", "user_id": "u1"}, format="json").json()
    assert added["results"][0]["app_id"] == "sports_portal"
    refused = api.post("/v3/memories/add/", {"messages": "x", "user_id": "u1", "app_id": "brand_new"}, format="json")
    assert refused.status_code == 400 and "restricted" in refused.json()["detail"]
    assert not App.objects.filter(app_id="brand_new").exists()


def test_a_key_bound_to_another_tenants_app_reaches_nothing(world, api, globex_memory):
    """A binding that crosses tenants (only a direct database edit can make one) opens neither that app nor,
    by reading as "unrestricted", every app of the key's own tenant."""
    secret = world.make_key(world.acme, "stray-binding")
    key = TenantAPIKey.objects.get(tenant=world.acme, name="stray-binding")
    key.apps.add(App.objects.get(tenant=world.globex, app_id="other_app"))
    _add(world.acme, "concierge_app", "u1", "acme fact")
    assert scope_for_api_key(key).apps == ()
    api.as_key(secret)
    assert api.get("/v1/ping/").json()["apps"] == []
    assert api.get(f"/v1/memories/{globex_memory.id}/").status_code == 404
    assert api.post("/v3/memories/", {"filters": {"user_id": "u1"}}, format="json").json()["count"] == 0
    key.apps.add(world.acme_sports)  # a binding in its own tenant: that app, still not the foreign one
    assert [app.app_id for app in scope_for_api_key(key).apps] == ["sports_portal"]


def test_staff_session_uses_the_membership(world, api):
    _add(world.acme, "concierge_app", "u1", "acme fact")
    api.force_login(world.acme_viewer.user)
    listed = api.post("/v3/memories/", {"filters": {"user_id": "u1"}}, format="json")
    assert listed.status_code == 200 and listed.json()["count"] == 1
    refused = api.post("/v3/memories/add/", {"messages": "x", "user_id": "u1"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert api.delete("/v1/memories/?user_id=u1").status_code == 403
    assert AuditEvent.objects.filter(actor=world.acme_viewer.user.username, action="memory.list").exists()


def test_staff_with_several_tenants_names_one(world, api):
    user = world.acme_admin.user
    world.globex_admin.user = user
    world.globex_admin.save()
    api.force_login(user)
    ambiguous = api.get("/v1/ping/")
    assert ambiguous.status_code == 400 and "X-Memadmin-Tenant" in ambiguous.json()["detail"]
    assert api.get("/v1/ping/", HTTP_X_MEMADMIN_TENANT="globex").json()["tenant"] == "globex"
    assert api.get("/v1/ping/", HTTP_X_MEMADMIN_TENANT="initech").status_code == 404


def test_staff_without_membership_is_refused(world, api):
    from tests.factories import UserFactory

    api.force_login(UserFactory())
    assert api.get("/v1/ping/").status_code == 403


def test_session_writes_need_csrf(world, api):
    from rest_framework.test import APIClient

    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(world.acme_admin.user)
    response = strict.post("/v3/memories/add/", {"messages": "x", "user_id": "u1"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_support_session_sees_what_the_service_shows(world, api):
    from memadmin.memory.filters import filter_from_fields

    _add(world.acme, "sports_portal", "u9", "sport fact")
    api.force_login(world.acme_support.user)
    via_api = api.post("/v3/memories/", {"filters": {"user_id": "u9"}}, format="json").json()
    scope = scope_for_membership(world.acme_support)
    direct = selectors.memory_list(scope=scope, filters=filter_from_fields(user_id="u9"), audit=False)
    assert [m["id"] for m in via_api["results"]] == [r.id for r in direct.items]


def test_a_write_to_an_app_another_request_just_created_uses_it(world):
    """Agents writing to a new app_id at once: one creates it, the others built their scope before it existed
    and must use it, not answer 404 (seen through gunicorn with three concurrent first adds)."""
    from types import SimpleNamespace

    from tenants.api.app_targets import app_for_write
    from tenants.api.auth import request_scope

    key = TenantAPIKey.objects.get(tenant=world.acme, name="acme-server")
    request = SimpleNamespace(auth=key, META={"REMOTE_ADDR": "127.0.0.1"})
    stale = request_scope(request)
    assert stale.app("fresh_app") is None
    App.objects.create(tenant=world.acme, app_id="fresh_app", name="fresh_app")  # the concurrent request's
    scope, ref = app_for_write(request, stale, "fresh_app")
    assert ref.app_id == "fresh_app" and scope.app("fresh_app") == ref
    assert App.objects.filter(tenant=world.acme, app_id="fresh_app").count() == 1
