"""A strict Content-Security-Policy on every response, and no-store on everything that carries personal
data. The browser half (htmx, Swagger UI, Redoc work with no CSP error) is test_csp_browser."""

import pytest
from django.core.cache import cache

from memadmin.memory import services
from tenants.links import data_link_issue
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_membership
from tests.factories import two_tenant_world


@pytest.fixture
def world(db):
    cache.clear()
    w = two_tenant_world()
    scope = scope_for_membership(w.acme_admin)
    w.memory = services.memory_add(scope=scope, app_id="concierge_app", messages="Alice likes tea", user_id="alice")[0]
    _link, w.link = data_link_issue(scope=scope, user_id="alice")
    _row, w.key = TenantAPIKey.objects.create_key(name="srv", tenant=w.acme)
    yield w
    cache.clear()


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in header.split(";")) if d}


def assert_strict(response):
    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no CDN
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["form-action"] == ["'self'"]


def no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def staff_pages(w):
    m = w.memory
    return [
        "/t/acme/",
        "/t/acme/memories/",
        f"/t/acme/memories/concierge_app/{m.id}/",
        "/t/acme/users/",
        "/t/acme/user/?user_id=alice",
        "/t/acme/user/export/?user_id=alice&format=json",
        "/t/acme/audit/",
        "/t/acme/audit/export.csv",
        "/t/acme/members/",
        "/t/acme/keys/",
        "/t/acme/jobs/",
    ]


def test_every_staff_page_has_the_policy_and_no_store(client, world):
    client.force_login(world.acme_admin.user)
    for url in staff_pages(world):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict(response)
        assert no_store(response), url


def test_your_data_pages_have_the_policy_and_no_store(client, world):
    for url in (world.link, world.link + "export.json"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict(response)
        assert no_store(response), url
        # The token is in the URL: no Referer with it to other sites, no framing, no sniffing.
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"


def test_api_memory_responses_are_not_stored(client, world):
    auth = {"HTTP_AUTHORIZATION": f"Token {world.key}"}
    for url in (f"/v1/memories/{world.memory.id}/", f"/v1/memories/{world.memory.id}/history/", "/v1/entities/"):
        response = client.get(url, **auth)
        assert response.status_code == 200, (url, response.content)
        assert no_store(response), url
        assert "Content-Security-Policy" in response
    for url, body in (
        ("/v3/memories/", {"filters": {"user_id": "alice"}}),
        ("/v3/memories/search/", {"query": "tea", "filters": {"user_id": "alice"}}),
        ("/v1/exports/get/", {"filters": {"user_id": "alice"}}),
    ):
        response = client.post(url, body, content_type="application/json", **auth)
        assert response.status_code in (200, 404), (url, response.content)  # no export made yet: 404
        assert no_store(response), url


def test_login_and_error_pages_have_the_policy(client, world):
    for url, status in (("/login/", 200), ("/nowhere/", 404), ("/your-data/not-a-token/", 403)):
        response = client.get(url)
        assert response.status_code == status
        assert_strict(response)


def test_only_the_api_docs_allow_inline_styles(client, world):
    for url in ("/api/docs/", "/api/redoc/"):
        response = client.get(url)
        assert response.status_code == 200
        csp = policy(response)
        assert csp["script-src"] == ["'self'"]
        assert "'unsafe-inline'" in csp["style-src"]
    assert "'unsafe-inline'" not in policy(client.get("/login/"))["style-src"]
