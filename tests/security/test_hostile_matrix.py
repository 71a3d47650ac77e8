"""The hostile suite, built from the URLconf so the next endpoint is covered without anyone remembering.

For every URL pattern of the project (API and dashboard; Django's own admin aside):

* every principal kind of one tenant (admin, support, viewer, unrestricted key,
  app-restricted key, end-user link) plus an outsider, nobody and a bad key, with
  every method, aimed at its own tenant's objects and at the other tenant's;
* hostile ids in every path parameter and in every id field of bodies and query strings;
* hostile bodies (deep JSON, huge arrays, wrong types, NaN, lone surrogates, 1e999).

Asserted everywhere: never a 500; on API paths every error is the JSON error shape;
the other tenant's data never appears in a response (its memories carry a marker),
and aiming at the other tenant's objects is "not found" (404), never 403 and never 2xx.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from memadmin.memory.models import AuditEvent
from tenants.models import Invitation, Job, Membership, Webhook
from tenants.webhooks.services import new_secret
from tests.support.hostile import (
    OUTSIDE_CONCIERGE,
    assert_json_error,
    hostile_id_values,
    is_api,
    marker,
    principals,
    send,
)

METHODS = ("get", "post", "put", "delete", "patch")
SKIPPED_PREFIXES = ("admin/", "static/", "media/")
CONVERTER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<parameter>[^>]+)>")
# Statuses that say nothing about another tenant's objects: never 2xx, never 403 (an existence oracle).
NOT_FOUND_LIKE = {301, 302, 400, 401, 404, 405, 429}
# Public OpenAPI schema and docs pages (drf-spectacular): their errors (405) come in their own media type.
DOCUMENTATION = ("/api/schema/", "/api/docs/", "/api/redoc/")
# Form and query fields the dashboard and the API read ids and text from.
INPUT_FIELDS = (
    "user_id",
    "agent_id",
    "run_id",
    "app_id",
    "app",
    "q",
    "query",
    "memory_id",
    "format",
    "confirm",
    "username",
    "role",
    "name",
    "apps",
    "ttl",
    "page",
    "page_size",
    "filters",
    "typed",
    "grace_hours",
    "url",
    "event_types",
    "include_text",
    "is_active",
    "email",
    "category",
    "action",
    "actor",
    "collection_name",
)


def _walk(patterns, prefix=""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern) and not route.startswith(SKIPPED_PREFIXES):
            yield route, entry


def all_routes() -> list[tuple[str, URLPattern]]:
    return list(_walk(get_resolver().url_patterns))


ROUTES = all_routes()
ROUTE_IDS = [entry.name or route for route, entry in ROUTES]


PARAMETERS = (
    "tenant_slug",
    "app_id",
    "memory_id",
    "token",
    "link_id",
    "job_id",
    "member_id",
    "invitation_id",
    "prefix",
    "entity_type",
    "name",
    "webhook_id",
    "org_id",
    "project_id",
    "event_id",
)


def _targets(world, slug: str) -> dict:
    """A value for every path parameter, naming tenant ``slug``'s objects."""
    tenant = getattr(world, slug)
    return {
        "tenant_slug": slug,
        "app_id": "sports_portal" if slug == "acme" else "other_app",
        "memory_id": world.memories[slug][0].id,
        "token": world.links[slug].token,
        "link_id": str(world.links[slug].row.pk),
        "job_id": str(world.jobs[slug].pk),
        "member_id": str(Membership.objects.get(tenant=tenant, role="support").pk),
        "invitation_id": str(world.invitations[slug].pk),
        "prefix": world.keys[slug].full_row.prefix,
        "entity_type": "user",
        "name": "alice",
        "webhook_id": str(world.webhooks[slug].pk),
        "org_id": slug,
        "project_id": slug,
        "event_id": str(AuditEvent.objects.for_tenant(tenant).filter(action="memory.add").first().event_id),
    }


def _fill(route: str, values: dict) -> str:
    def replace(match):
        value = values[match["parameter"]]
        return quote(value.encode("utf-8", "surrogatepass"), safe="") if isinstance(value, str) else str(value)

    return "/" + CONVERTER.sub(replace, route).replace("\\Z", "").lstrip("^")


def _kitchen_sink(world, slug: str) -> dict:
    """One body that every endpoint can read something from, all of it naming ``slug``'s objects."""
    memory = world.memories[slug][0]
    return {
        "messages": "kitchen sink", "user_id": "alice", "query": "tea", "text": "overwritten?",
        "filters": {"user_id": "alice"}, "memories": [{"memory_id": memory.id, "text": "overwritten?"}],
        "memory_id": memory.id, "app_id": _targets(world, slug)["app_id"], "confirm": "yes", "format": "json",
    }  # fmt: skip


@pytest.fixture
def world(hostile_world, settings):
    settings.MEMADMIN_API_RATE = None  # thousands of requests per key: no rate limit in the way
    settings.MEMADMIN_API_AUTH_FAILURE_LIMIT = 10**9  # nor an address locked out by the bad-key principal
    settings.MEMADMIN_API_KEY_LOCK_FAILURES = 10**9
    hostile_world.jobs = {}
    hostile_world.invitations = {
        tenant.slug: Invitation.objects.create(
            tenant=tenant,
            email=f"invitee@{tenant.slug}.example",
            role="viewer",
            token_hash=hashlib.sha256(tenant.slug.encode()).hexdigest(),
            expires_at="2999-01-01T00:00:00Z",
        )  # fmt: skip
        for tenant in hostile_world.tenants
    }
    # Per tenant a tenant-wide webhook, whose name carries the tenant's marker and the text the app-restricted
    # key must never see (it sees only webhooks bound within its apps), and one bound to concierge_app.
    hostile_world.webhooks, hostile_world.concierge_webhooks = {}, {}
    for tenant in hostile_world.tenants:
        hostile_world.webhooks[tenant.slug] = Webhook.objects.create(
            tenant=tenant, name=f"{marker(tenant)} {OUTSIDE_CONCIERGE}", url=f"https://{tenant.slug}.invalid/hook",
            event_types=["memory_add"], secret=new_secret(), created_by="test",
        )  # fmt: skip
        bound = Webhook.objects.create(tenant=tenant, name=f"{marker(tenant)} concierge hook", secret=new_secret(),
                                       url=f"https://{tenant.slug}.invalid/c", event_types=["memory_add"],
                                       created_by="test")  # fmt: skip
        bound.apps.set([tenant.apps.get(app_id="concierge_app")])
        hostile_world.concierge_webhooks[tenant.slug] = bound
    exports = Path(django_settings.DATA_DIR) / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    for tenant in hostile_world.tenants:
        result = exports / f"hostile-{tenant.slug}.json"
        result.write_text(json.dumps([marker(tenant)]))
        hostile_world.jobs[tenant.slug] = Job.objects.create(
            kind=Job.Kind.EXPORT_TENANT, tenant=tenant, requested_by="test", state=Job.State.SUCCEEDED,
            params={"format": "json", "gzip": False, "app_id": None}, receipt={"note": marker(tenant)},
            result_file=str(result), result_expires_at="2999-01-01T00:00:00Z",
        )  # fmt: skip
    return hostile_world


def _content(response) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode("utf-8", "replace")


def _check(response, *, path: str, forbidden: tuple[str, ...], context) -> str:
    assert response.status_code < 500, (context, _content(response)[:500])
    body = _content(response)
    if is_api(path) and response.status_code >= 400 and not path.startswith(DOCUMENTATION):
        assert_json_error(response)
    leaked = [text for text in forbidden if text in body]
    assert not leaked, (context, response.status_code, leaked)
    return body


def test_every_route_parameter_has_a_value(hostile_world):
    """A new route with a parameter nobody taught the suite fails here, instead of going untested."""
    known = set(PARAMETERS)
    unknown = {(route, m["parameter"]) for route, _ in ROUTES for m in CONVERTER.finditer(route)
               if m["parameter"] not in known}  # fmt: skip
    assert not unknown, unknown
    assert len(ROUTES) >= 40, ROUTES


@pytest.mark.parametrize("route, entry", ROUTES, ids=ROUTE_IDS)
def test_cross_tenant_matrix(world, route, entry):
    """Every principal of Acme, every method, at Acme's objects and at Globex's (and, on a link's pages, through
    the link the app-restricted key issued, which must stay inside that key's apps)."""
    params = [m["parameter"] for m in CONVERTER.finditer(route)]
    statuses: dict = {}
    own: dict = {}  # (principal, method) -> status at its own tenant's object
    variants = [("acme", None), ("globex", None)] + ([("acme", "restricted link")] if "token" in params else [])
    for target, variant in variants:
        values = _targets(world, target)
        if variant:
            values["token"] = world.restricted_links[target].token
        path = _fill(route, values)
        body = _kitchen_sink(world, target)
        for who in principals(world, world.acme):
            if "token" in params:
                # The token is the credential: whoever holds it sees that one person, in the issuer's apps.
                granted = target
                forbidden = (*(marker(t) for t in world.tenants if t.slug != granted), "bob likes coffee",
                             *((OUTSIDE_CONCIERGE,) if variant else ()))  # fmt: skip
            else:
                granted = who.tenant.slug if who.tenant else None
                forbidden = (*(marker(t) for t in world.tenants if t.slug != granted), *who.hidden)
            for method in METHODS:
                if is_api(path):
                    response = send(who.client, method, path, body)
                else:
                    data = {k: v for k, v in body.items() if isinstance(v, str)}
                    response = getattr(who.client, method)(path, data if method in ("get", "post") else None)
                context = (who.name, method.upper(), path)
                _check(response, path=path, forbidden=forbidden, context=context)
                if variant:
                    continue
                addresses_objects = "token" not in params and set(params) - {"entity_type", "name"}
                if who.tenant is None:
                    statuses.setdefault((who.name, method), set()).add(response.status_code)
                elif target == who.tenant.slug:
                    own[(who.name, method)] = response.status_code
                elif addresses_objects:
                    # 403 only where the role refuses this method on its own tenant's object too: a refusal
                    # that does not depend on the object says nothing about it.
                    role_refusal = response.status_code == 403 and own.get((who.name, method)) == 403
                    assert response.status_code in NOT_FOUND_LIKE or role_refusal, (context, response.status_code)
    # Nobody's principals (an outsider, no credentials, a bad key) get the same answer for both tenants.
    if set(params) - {"entity_type", "name", "token"}:
        differing = {k: v for k, v in statuses.items() if len(v) > 1}
        assert not differing, differing


HOSTILE_BODIES = {
    "deep-json": '{"filters": ' + "[" * 3000 + "]" * 3000 + "}",
    "deep-metadata": json.dumps({"messages": "x", "user_id": "u", "metadata": json.loads('{"a":' * 200 + "1"
                                                                                          + "}" * 200)}),
    "huge-array": json.dumps({"filters": {"OR": [{"user_id": str(i)} for i in range(20_000)]},
                              "memories": [{"memory_id": str(i)} for i in range(5_000)]}),
    "wrong-types": json.dumps({"messages": 5, "user_id": [1], "filters": 5, "memories": "x", "query": {},
                               "text": [], "metadata": "x", "ttl": "soon", "top_k": "many", "page": -1}),
    "not-an-object": "[1, 2, 3]",
    "nan": '{"filters": {"AND": [{"user_id": "a"}, {"created_at": {"gte": NaN}}]}, "top_k": Infinity}',
    "1e999": '{"filters": {"AND": [{"user_id": "a"}, {"created_at": {"lte": 1e999}}]}, "threshold": 1e999}',
    "surrogate": '{"messages": "\\udfff", "user_id": "\\ud800", "query": "\\udfff", "filters": {"user_id": '
                 '"\\udfff"}, "memories": [{"memory_id": "\\udfff", "text": "\\udfff"}]}',
    "garbage": "\x00\xff{",
}  # fmt: skip


@pytest.mark.parametrize(
    "route, entry",
    [(r, e) for r, e in ROUTES if is_api("/" + r)],
    ids=[i for (r, _), i in zip(ROUTES, ROUTE_IDS, strict=True) if is_api("/" + r)],
)
def test_hostile_bodies_on_every_api_endpoint(world, route, entry):
    path = _fill(route, _targets(world, "acme"))
    key = world.keys["acme"].full
    client = Client(headers={"Authorization": f"Token {key}"})
    for name, raw in HOSTILE_BODIES.items():
        for method in METHODS:
            response = send(client, method, path, raw=raw)
            body = _check(response, path=path, forbidden=(marker(world.globex),), context=(name, method, path))
            if response.status_code < 300 and method in ("post", "put") and name in ("surrogate", "nan", "1e999"):
                pytest.fail(f"{name} accepted by {method.upper()} {path}: {body[:300]}")


@pytest.mark.parametrize("route, entry", ROUTES, ids=ROUTE_IDS)
def test_hostile_ids_everywhere(world, route, entry):
    """Each hostile id in each path parameter, and in every id/text field of query strings and bodies."""
    params = [m["parameter"] for m in CONVERTER.finditer(route)]
    base = _targets(world, "acme")
    admin = Client()
    admin.force_login(world.acme_admin.user)
    key = Client(headers={"Authorization": f"Token {world.keys['acme'].full}"})
    forbidden = (marker(world.globex),)
    for hostile in hostile_id_values():
        for param in params:
            path = _fill(route, {**base, param: hostile})
            for client in (admin, key) if is_api(path) else (admin, Client()):
                for method in ("get", "post", "delete"):
                    response = (send(client, method, path, {"user_id": "alice"}) if is_api(path)
                                else getattr(client, method)(path))  # fmt: skip
                    _check(response, path=path, forbidden=forbidden, context=(param, repr(hostile)[:40], method))
        path = _fill(route, base)
        fields = {name: hostile for name in INPUT_FIELDS}
        if is_api(path):
            body = {**fields, "messages": hostile, "filters": {"user_id": hostile},
                    "memories": [{"memory_id": hostile, "text": hostile}]}  # fmt: skip
            raw = json.dumps(body)  # a lone surrogate goes out as the JSON escape \udfff
            for method in METHODS:
                response = send(key, method, path + "?" + _query(fields), raw=raw)
                _check(response, path=path, forbidden=forbidden, context=("body", repr(hostile)[:40], method))
        else:
            for method in ("get", "post"):
                encoded = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in fields.items()}
                response = getattr(admin, method)(path + "?" + _query(fields), encoded)
                _check(response, path=path, forbidden=forbidden, context=("form", repr(hostile)[:40], method))


def _query(fields: dict) -> str:
    return "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in fields.items())
