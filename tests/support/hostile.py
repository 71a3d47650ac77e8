"""The hostile suite's world: tenants × roles × key kinds, and the principals that act in it.

``hostile_world`` is Acme and Globex (two apps each, an admin, support and viewer
in each), per tenant an unrestricted API key, a key restricted to concierge_app
and two "your data" links for alice (one issued by an admin, one by the restricted
key), and a few memories whose text carries a per-tenant marker (``SECRET-acme`` /
``SECRET-globex``): a response that shows the other tenant's marker is a
cross-tenant leak, whatever the endpoint. Alice's memory outside concierge_app
says ``OUTSIDE_CONCIERGE``: a response to the restricted key, or to its link, that
shows it is a leak across apps.

``principals(world, tenant)`` lists every kind of caller of one tenant as
``Principal(name, kind, client)``; the suite loops over them so a new role or key
kind is covered by adding it here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from memadmin.memory import services
from tenants.links import data_link_issue
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_api_key, scope_for_membership
from tests.factories import UserFactory, two_tenant_world

ROLES = ("admin", "support", "viewer")
API_PREFIXES = ("/v1/", "/v2/", "/v3/", "/api/")
HOSTILE_IDS = [
    pytest.param("a/b", id="slash"),
    pytest.param("..", id="dotdot"),
    pytest.param("../../etc/passwd", id="traversal"),
    pytest.param("%2F", id="pct-slash"),
    pytest.param("*", id="star"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("\udfff", id="lone-surrogate"),
    pytest.param("a\u202egpj.exe", id="rtl-override"),
    pytest.param("a\u200bb", id="zero-width-space"),
    pytest.param("x" * 10_000, id="10k-chars"),
    pytest.param("@user_id:{x}", id="query-syntax"),
    pytest.param("alice", id="other-tenants-user"),
]


# The text of the memory outside concierge_app: what an app-restricted key and its links must never show.
OUTSIDE_CONCIERGE = "alice plays chess"


def hostile_id_values() -> list[str]:
    return [p.values[0] for p in HOSTILE_IDS]


def marker(tenant) -> str:
    return f"SECRET-{tenant.slug}"


@dataclass
class Principal:
    name: str  # e.g. "acme:admin", "acme:key-restricted"
    kind: str  # "staff" | "key" | "end_user" | "anonymous"
    tenant: object | None
    client: Client
    role: str | None = None
    token: str | None = None  # the your-data token of an end-user principal
    hidden: tuple[str, ...] = ()  # texts of its own tenant it must never see (outside its apps)


def api_client(key: str | None = None) -> Client:
    """A plain Django test client that sends an API key the way mem0.MemoryClient does."""
    headers = {"Authorization": f"Token {key}"} if key else {}
    return Client(headers=headers)


def send(client: Client, method: str, url: str, body=None, raw: bytes | str | None = None):
    """One request; bodies are JSON (or the raw bytes given, for malformed JSON)."""
    data = raw if raw is not None else (json.dumps(body) if body is not None else "")
    return client.generic(method.upper(), url, data, content_type="application/json")


def is_api(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def assert_json_error(response, status: int | None = None) -> dict:
    """The API's one error shape: {"error": {code, message, field}, "detail": message}."""
    assert response.status_code < 500, response.content[:500]
    if status is not None:
        assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), (response.status_code, response.content[:300])
    body = json.loads(response.content)
    assert set(body) == {"error", "detail"}, body
    assert body["detail"] == body["error"]["message"] and body["error"]["code"], body
    return body


def _world():
    w = two_tenant_world()
    w.outsider = UserFactory(username="outsider")
    w.tenants = (w.acme, w.globex)
    w.memories = {}
    w.keys, w.links, w.restricted_links = {}, {}, {}
    for tenant in w.tenants:
        admin = getattr(w, f"{tenant.slug}_admin")
        scope = scope_for_membership(admin)
        added = [
            services.memory_add(
                scope=scope,
                app_id="concierge_app",
                user_id="alice",
                agent_id="concierge",
                run_id="run-1",
                messages=f"{marker(tenant)} alice likes tea",
            )[0],
            services.memory_add(
                scope=scope, app_id="concierge_app", user_id="bob", messages=f"{marker(tenant)} bob likes coffee"
            )[0],
            services.memory_add(
                scope=scope,
                app_id=("sports_portal" if tenant.slug == "acme" else "other_app"),
                user_id="alice",
                messages=f"{marker(tenant)} {OUTSIDE_CONCIERGE}",
            )[0],
        ]
        w.memories[tenant.slug] = added
        row, full = TenantAPIKey.objects.create_key(name=f"{tenant.slug}-all", tenant=tenant)
        restricted_row, restricted = TenantAPIKey.objects.create_key(name=f"{tenant.slug}-concierge", tenant=tenant)
        restricted_row.apps.set([tenant.apps.get(app_id="concierge_app")])
        read_only_row, read_only = TenantAPIKey.objects.create_key(
            name=f"{tenant.slug}-reader", tenant=tenant, read_only=True
        )
        expired_row, expired = TenantAPIKey.objects.create_key(
            name=f"{tenant.slug}-expired", tenant=tenant, expiry_date=timezone.now() - timedelta(days=1)
        )
        w.keys[tenant.slug] = SimpleNamespace(
            full=full,
            full_row=row,
            restricted=restricted,
            restricted_row=restricted_row,
            read_only=read_only,
            read_only_row=read_only_row,
            expired=expired,
            expired_row=expired_row,
        )
        link, path = data_link_issue(scope=scope, user_id="alice")
        w.links[tenant.slug] = SimpleNamespace(row=link, path=path, token=path.rstrip("/").rsplit("/", 1)[-1])
        link, path = data_link_issue(scope=scope_for_api_key(restricted_row), user_id="alice")
        w.restricted_links[tenant.slug] = SimpleNamespace(
            row=link, path=path, token=path.rstrip("/").rsplit("/", 1)[-1]
        )
    return w


@pytest.fixture
def hostile_world(db):
    cache.clear()  # throttle and lockout counters live in the cache
    yield _world()
    cache.clear()


def principals(world, tenant, *, anonymous: bool = True) -> list[Principal]:
    """Every kind of caller belonging to ``tenant`` (plus, if asked, nobody at all)."""
    found = []
    for role in ROLES:
        client = Client()
        client.force_login(getattr(world, f"{tenant.slug}_{role}").user)
        found.append(Principal(f"{tenant.slug}:{role}", "staff", tenant, client, role=role))
    keys = world.keys[tenant.slug]
    found.append(Principal(f"{tenant.slug}:key", "key", tenant, api_client(keys.full)))
    found.append(
        Principal(
            f"{tenant.slug}:key-restricted", "key", tenant, api_client(keys.restricted), hidden=(OUTSIDE_CONCIERGE,)
        )
    )
    found.append(Principal(f"{tenant.slug}:key-read-only", "key", tenant, api_client(keys.read_only)))
    found.append(Principal(f"{tenant.slug}:key-expired", "key", tenant, api_client(keys.expired)))
    link = world.links[tenant.slug]
    found.append(Principal(f"{tenant.slug}:end-user", "end_user", tenant, Client(), token=link.token))
    if anonymous:
        outsider = Client()
        outsider.force_login(world.outsider)
        found.append(Principal("outsider", "staff", None, outsider))
        found.append(Principal("anonymous", "anonymous", None, Client()))
        found.append(Principal("bad-key", "key", None, api_client("nope.nope")))
    return found


@pytest.fixture
def staff_client(hostile_world):
    """A logged-in client for one of the world's memberships: staff_client("acme", "admin")."""

    def make(slug: str, role: str) -> Client:
        client = Client()
        client.force_login(getattr(hostile_world, f"{slug}_{role}").user)
        return client

    return make


def your_data_url(world, slug: str, name: str = "your_data", **kwargs) -> str:
    return reverse(name, kwargs={"token": world.links[slug].token, **kwargs})
