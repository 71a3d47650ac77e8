"""ONE access matrix, generated from the URLconf, tenants/permissions.URL_CAPABILITIES,
tenants/api/permissions.ENDPOINT_CAPABILITIES and memadmin/memory/capabilities.py: every URL pattern of the
project (API and dashboard; Django's own admin aside) x every principal of a tenant (admin, support, viewer,
unrestricted key, app-restricted key, read-only key, expired key, end-user link; plus an outsider, nobody and a
bad key) x its own tenant
and the other one x every method. One test per URL pattern builds the two-tenant world once and runs, each
part from the same fresh state (database savepoint rolled back, Valkey put back as it was):

1. the dashboard's exact answers (tenants/permissions.URL_CAPABILITIES): a role with the URL's capability gets
   the URL's "ok" status, one without gets 403, any role of the other tenant 404; an outsider 404; nobody is
   sent to sign in; a mutation answers GET with 405;
2. the API's exact answers (tenants/api/permissions.ENDPOINT_CAPABILITIES): a staff role gets 403 exactly
   where its role lacks the endpoint's capability for that method; a read-only key 403 (naming it read-only)
   exactly where the method writes or deletes; an expired key 401 (saying it expired) everywhere;
3. every principal x method at its own tenant's objects and the other's: never a 500; on API paths every error
   is the JSON error shape; the other tenant's data never appears in a response (its memories carry a marker);
   aiming at the other tenant's objects is "not found", never 403 (unless refused at home too) and never 2xx;
4. hostile ids in every path parameter and in every id field of bodies and query strings;
5. hostile bodies (deep JSON, huge arrays, wrong types, NaN, lone surrogates, 1e999) on API paths;
6. the Mem0-platform project, members and events routes, per principal kind, what each kind gets.

The tables below cross-check the URLconf, so that a new view or endpoint without a table entry (or an entry
without a view) fails here instead of going untested.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from memadmin.memory import services
from memadmin.memory.capabilities import role_can
from memadmin.memory.models import AuditEvent
from memadmin.memory.receipts import receipt_record
from memadmin.memory.scope import READ_ONLY_WITHHELD
from tenants.api.permissions import ENDPOINT_CAPABILITIES, PUBLIC
from tenants.jobs.models import Job
from tenants.models import DataLink, Invitation, Membership, Tenant, TenantAPIKey
from tenants.permissions import MUTATIONS, ROLES, URL_CAPABILITIES
from tenants.scoping import scope_for_membership
from tenants.webhooks.models import Webhook
from tenants.webhooks.services import new_secret
from tests.factories import MembershipFactory, UserFactory
from tests.support.dashboard import login
from tests.support.hostile import (
    OUTSIDE_CONCIERGE,
    assert_json_error,
    hostile_id_values,
    is_api,
    marker,
    principals,
    send,
)

# --- 1. the dashboard: url name -> how to call it; "ok" is the status a role with the URL's capability gets.
DASHBOARD = {
    "overview": dict(ok=200),
    "memories": dict(ok=200),
    "memories?q": dict(url="memories", query={"q": "food"}, ok=200),
    # Hybrid search looks the words up in every text it may read: the other tenant's marker and the memory
    # outside a restricted key's apps hold these words, and must stay unseen all the same.
    "memories?words": dict(url="memories", query={"q": "secret chess", "weak": "1"}, ok=200),
    "user?words": dict(url="user", query={"user_id": "alice", "q": "secret chess", "weak": "1"}, ok=200),
    "memory": dict(kwargs=lambda t: {"app_id": t.app, "memory_id": t.memory.id}, ok=200),
    "memory_delete": dict(
        kwargs=lambda t: {"app_id": t.app, "memory_id": t.memory.id}, data={"confirm": "yes"}, ok=302
    ),
    "memory_edit": dict(kwargs=lambda t: {"app_id": t.app, "memory_id": t.memory.id}, ok=200),
    "memory_edit_save": dict(
        kwargs=lambda t: {"app_id": t.app, "memory_id": t.memory.id},
        data={"text": "corrected", "metadata": "{}"},
        ok=302,
    ),
    "app": dict(kwargs=lambda t: {"app_id": t.app}, ok=200),
    "app_pause": dict(kwargs=lambda t: {"app_id": t.app}, ok=302),
    "app_resume": dict(kwargs=lambda t: {"app_id": t.app}, ok=302),
    "app_export": dict(kwargs=lambda t: {"app_id": t.app}, query={"format": "json"}, ok=200),
    "users": dict(ok=200),
    "user": dict(query={"user_id": "alice"}, ok=200),
    "user_suggest": dict(query={"user_id": "al"}, ok=200),
    "user_export": dict(query={"user_id": "alice", "format": "csv"}, ok=200),
    "user_delete": dict(data={"user_id": "alice", "confirm_user_id": "alice"}, ok=302),  # post-redirect-get
    "link_issue": dict(data={"user_id": "alice", "days": "7"}, ok=302),
    "user_run_delete": dict(data={"user_id": "alice", "run_id": "run-1", "confirm": "run-1"}, ok=302),
    "user_agent_delete": dict(data={"user_id": "alice", "agent_id": "concierge", "confirm": "concierge"}, ok=302),
    "link_revoke": dict(kwargs=lambda t: {"link_id": t.link.pk}, data={"confirm": "yes"}, ok=302),
    "links": dict(ok=200),
    "erasures": dict(ok=200),
    "erasures?bad": dict(url="erasures", query={"date_from": "2026-13-45"}, ok=400),
    "erasure_receipt": dict(kwargs=lambda t: {"receipt_id": t.receipt.pk}, ok=200),
    "erasure_public_key": dict(ok=200),
    "audit": dict(ok=200),
    "audit_csv": dict(ok=200),
    "members": dict(ok=200),
    "member_add": dict(data=lambda t: {"email": t.newcomer.email, "role": "viewer"}, ok=302),
    "invitation_resend": dict(kwargs=lambda t: {"invitation_id": t.invitation.pk}, ok=302),
    "invitation_cancel": dict(kwargs=lambda t: {"invitation_id": t.invitation.pk}, ok=302),
    "member_role": dict(
        kwargs=lambda t: {"member_id": t.target.pk}, data={"role": "support", "confirm": "yes"}, ok=302
    ),
    "member_remove": dict(kwargs=lambda t: {"member_id": t.target.pk}, data={"confirm": "yes"}, ok=302),
    "api_keys": dict(ok=200),
    "api_key_new": dict(data={"name": "crm"}, ok=302),
    "api_key_new?read-only": dict(
        url="api_key_new",
        data=lambda t: {
            "name": "reader",
            "read_only": "on",
            "apps": "concierge_app",
            "expires": (timezone.localdate() + timezone.timedelta(days=30)).isoformat(),
        },
        ok=302,
    ),
    "api_key_new?bad-expiry": dict(url="api_key_new", data={"name": "reader", "expires": "2099-01-01"}, ok=400),
    "job?back": dict(url="job", kwargs=lambda t: {"job_id": t.job.pk}, query={"back": "offboard"}, ok=200),
    "api_key_revoke": dict(kwargs=lambda t: {"prefix": t.api_key.prefix}, ok=302),
    "api_key_offboarding": dict(kwargs=lambda t: {"prefix": t.api_key.prefix}, data={"allowed": "off"}, ok=302),
    # the API request log; another tenant's key or app in its filters: tests/security/test_request_log.py
    "requests": dict(ok=200),
    "requests?key": dict(
        url="requests",
        ok=200,
        query=lambda t: {"key": t.api_key.prefix, "status": "4xx", "http_method": "GET", "app": t.app},
    ),
    "requests?bad": dict(url="requests", query={"date_from": "2026-13-45"}, ok=400),
    # background jobs (tenants/views/jobs.py)
    "jobs": dict(ok=200),
    "job": dict(kwargs=lambda t: {"job_id": t.job.pk}, ok=200),
    "job_receipt": dict(kwargs=lambda t: {"job_id": t.job.pk}, ok=200),
    "job_download": dict(kwargs=lambda t: {"job_id": t.export_job.pk}, ok=200),
    "job_cancel": dict(kwargs=lambda t: {"job_id": t.job.pk}, ok=302),
    "app_offboard": dict(kwargs=lambda t: {"app_id": t.app}, ok=200),
    "app_offboard_start": dict(kwargs=lambda t: {"app_id": t.app}, data=lambda t: {"confirm_app_id": t.app}, ok=302),
    "app_move": dict(kwargs=lambda t: {"app_id": t.app}, ok=200),
    # One store here: the only one is the app's own, a clear 400 (two stores: tests/tenants/views/test_app_move.py)
    "app_move_start": dict(
        kwargs=lambda t: {"app_id": t.app}, data=lambda t: {"store": "default", "confirm_app_id": t.app}, ok=400
    ),
    "app_export_job": dict(kwargs=lambda t: {"app_id": t.app}, data={"format": "json"}, ok=302),
    "tenant_export_job": dict(data={"format": "json"}, ok=302),
    "user_erase": dict(data={"user_id": "alice", "confirm_user_id": "alice"}, ok=302),
    # webhooks (tenants/views/webhooks.py); hooks.invalid never resolves, so the test event fails fast
    "webhooks": dict(ok=200),
    "webhook_new": dict(data={"name": "crm", "url": "https://hooks.invalid/in", "event_types": "memory_add"}, ok=200),
    "webhook": dict(kwargs=lambda t: {"webhook_id": t.webhook.pk}, ok=200),
    "webhook_edit": dict(
        kwargs=lambda t: {"webhook_id": t.webhook.pk},
        data={"name": "crm", "url": "https://hooks.invalid/in", "event_types": "memory_delete", "is_active": "on"},
        ok=302,
    ),
    "webhook_test": dict(kwargs=lambda t: {"webhook_id": t.webhook.pk}, ok=302),
    "webhook_rotate": dict(kwargs=lambda t: {"webhook_id": t.webhook.pk}, data={"confirm": "yes"}, ok=200),
    "webhook_delete": dict(kwargs=lambda t: {"webhook_id": t.webhook.pk}, data={"confirm": "yes"}, ok=302),
    # imports (tenants/views/imports.py)
    "app_import": dict(kwargs=lambda t: {"app_id": t.app}, ok=200),
    "app_import_start": dict(
        kwargs=lambda t: {"app_id": t.app},
        ok=302,
        data=lambda t: {
            "file": SimpleUploadedFile("m.ndjson", b'{"id": "m1", "memory": "imported", "user_id": "alice"}\n')
        },
    ),
    "collection_register": dict(ok=200),
    "collection_register_save": dict(
        data={"app_id": "adopted", "collection_name": "oss_bot", "store": "default"}, ok=200
    ),
    # agents and runs (tenants/views/entities.py): ids in the query string; one without memories here is not found
    "agents": dict(ok=200),
    "agents?q": dict(url="agents", query={"q": "con", "app": "concierge_app"}, ok=200),
    "agents?bad": dict(url="agents", query={"q": "a\u202eb"}, ok=400),
    "agent": dict(query=lambda t: {"agent_id": t.memory.agent_id}, ok=200),
    "agent?missing": dict(url="agent", query={"agent_id": "nobody-here"}, ok=404),
    "agent_delete": dict(data=lambda t: {"agent_id": t.memory.agent_id, "confirm": t.memory.agent_id}, ok=302),
    "runs": dict(ok=200),
    "run": dict(query=lambda t: {"run_id": t.memory.run_id}, ok=200),
    "run?bad": dict(url="run", query={"run_id": ""}, ok=400),
    "run_delete": dict(data={"run_id": "run-1", "confirm": "run-1"}, ok=302),
    # bulk selection (tenants/views/selection.py): a preview first (200), then the act when the count comes back
    "selection_delete": dict(data=lambda t: {"m": f"{t.app} {t.memory.id}"}, ok=200),
    "selection_delete?confirmed": dict(
        url="selection_delete", data=lambda t: {"m": f"{t.app} {t.memory.id}", "confirm": "1"}, ok=302
    ),
    "selection_delete?all": dict(url="selection_delete", data={"all": "1", "user_id": "alice"}, ok=200),
    "selection_delete?empty": dict(url="selection_delete", data={}, ok=400),
    "selection_export": dict(data=lambda t: {"m": f"{t.app} {t.memory.id}"}, ok=200),
    "selection_export?confirmed": dict(
        url="selection_export", data={"all": "1", "user_id": "alice", "confirm": "2"}, ok=302
    ),
    "deletion_done": dict(ok=200),
}


def _is_tenant_view(view) -> bool:
    while view is not None:  # login_required wraps the permission gate
        if getattr(view, "is_tenant_view", False):
            return True
        view = getattr(view, "__wrapped__", None)
    return False


def _all_patterns(patterns, prefix=""):
    for p in patterns:
        if hasattr(p, "url_patterns"):
            yield from _all_patterns(p.url_patterns, prefix + str(p.pattern))
        else:
            yield prefix + str(p.pattern), p


def tenant_url_names() -> set[str]:
    """Every URL whose view goes through tenant_view."""
    return {p.name for _, p in _all_patterns(get_resolver().url_patterns) if _is_tenant_view(p.callback)}


def _tenant_data(world, memories, tenant):
    t = SimpleNamespace(slug=tenant.slug, app="concierge_app")
    t.memory = memories.alice_food if tenant == world.acme else memories.globex_alice
    t.link = DataLink.objects.create(
        tenant=tenant, user_id="alice", created_by="x", expires_at=timezone.now() + timezone.timedelta(days=1)
    )
    t.target = MembershipFactory(tenant=tenant, role="viewer", user=UserFactory(username=f"{tenant.slug}-target"))
    t.newcomer = UserFactory(username=f"{tenant.slug}-newcomer")
    t.invitation = Invitation.objects.create(
        tenant=tenant,
        email=f"{tenant.slug}-invitee@example.com",
        token_hash=uuid.uuid4().hex,
        expires_at=timezone.now() + timezone.timedelta(days=1),
    )
    t.api_key, _ = TenantAPIKey.objects.create_key(name=f"{tenant.slug}-key", tenant=tenant)
    t.webhook = Webhook.objects.create(
        tenant=tenant,
        name=f"{tenant.slug}-hook",
        url="https://hooks.invalid/x",
        event_types=["memory_add"],
        secret=new_secret(),
        created_by="x",
    )
    result = Path(django_settings.DATA_DIR) / f"matrix-{tenant.slug}-{uuid.uuid4().hex}.json"
    result.write_text("[]")
    t.job = Job.objects.create(
        kind=Job.Kind.ERASE_USER,
        tenant=tenant,
        params={"user_id": "alice"},
        requested_by="someone",
        receipt={"per_app": {}},
        result_file=str(result),
        result_expires_at=timezone.now() + timezone.timedelta(hours=1),
    )
    t.export_job = Job.objects.create(
        kind=Job.Kind.EXPORT_APP,
        tenant=tenant,
        params={"format": "json"},
        requested_by="someone",
        receipt={"per_app": {}},
        result_file=str(result),
        result_expires_at=timezone.now() + timezone.timedelta(hours=1),
    )
    t.receipt = receipt_record(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        kind="user",
        actor="someone",
        actor_kind="staff",
        role="support",
        per_app={"concierge_app": {"memories": 1}},
        verification={"remaining": 0},
        user_id="alice",
    )
    return t


def _request(client, name, case, t):
    def value(key, default):
        v = case.get(key, default)
        return v(t) if callable(v) else v

    url = reverse(case.get("url", name), kwargs={"tenant_slug": t.slug, **value("kwargs", {})})
    if case.get("url", name) in MUTATIONS:
        return client.post(url, value("data", {}))
    return client.get(url, value("query", {}))


def _consume(response):
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    return response


# --- 2. the API: path parameters for reverse(); the objects need not exist (the role check comes first).
API_KWARGS = {
    "api-memory-history": {"memory_id": "x"},
    "api-memory-detail": {"memory_id": "x"},
    "api-entity-delete": {"entity_type": "user", "name": "nobody"},
    "api-job": {"job_id": "00000000-0000-4000-8000-000000000000"},
    "api-receipt": {"receipt_id": "00000000-0000-4000-8000-000000000000"},
    "api-webhooks": {"project_id": "acme"},
    "api-webhook": {"webhook_id": 999999},
    "api-event": {"event_id": "00000000-0000-4000-8000-000000000000"},
    "api-entity-profile": {"entity_type": "user", "name": "nobody"},
    "api-project-create": {"org_id": "acme"},
    "api-project": {"org_id": "acme", "project_id": "acme"},
    "api-project-members": {"org_id": "acme", "project_id": "acme"},
    "api-profile-job": {"job_id": "x"},
}


def api_endpoints() -> dict[str, set[str]]:
    """URL name -> the methods its view serves, for every view the DRF API dispatches."""
    found = {}
    for pattern in get_resolver().url_patterns:
        for p in getattr(pattern, "url_patterns", [pattern]):
            cls = getattr(p.callback, "cls", None)
            if cls is None or p.name in PUBLIC:
                continue
            found[p.name] = {m.upper() for m in cls.http_method_names} - {"OPTIONS"}
    return found


# --- 3.-5. every principal, hostile ids and bodies.
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
    "store",
    "m",
    "page_m",
    "after",
    "expires",
    "read_only",
    "back",
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
    "receipt_id",
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
        "receipt_id": str(world.receipts[slug].pk),
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
        "messages": "kitchen sink",
        "user_id": "alice",
        "query": "tea secret chess",
        "keyword_search": True,
        "text": "overwritten?",
        "filters": {"user_id": "alice"},
        "memories": [{"memory_id": memory.id, "text": "overwritten?"}],
        "memory_id": memory.id,
        "app_id": _targets(world, slug)["app_id"],
        "confirm": "yes",
        "format": "json",
    }


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


HOSTILE_BODIES = {
    "deep-json": '{"filters": ' + "[" * 3000 + "]" * 3000 + "}",
    "deep-metadata": json.dumps(
        {"messages": "x", "user_id": "u", "metadata": json.loads('{"a":' * 200 + "1" + "}" * 200)}
    ),
    "huge-array": json.dumps(
        {
            "filters": {"OR": [{"user_id": str(i)} for i in range(20_000)]},
            "memories": [{"memory_id": str(i)} for i in range(5_000)],
        }
    ),
    "wrong-types": json.dumps(
        {
            "messages": 5,
            "user_id": [1],
            "filters": 5,
            "memories": "x",
            "query": {},
            "text": [],
            "metadata": "x",
            "ttl": "soon",
            "top_k": "many",
            "page": -1,
            "keyword_search": "perhaps",
        }
    ),
    "not-an-object": "[1, 2, 3]",
    "nan": '{"filters": {"AND": [{"user_id": "a"}, {"created_at": {"gte": NaN}}]}, "top_k": Infinity}',
    "1e999": '{"filters": {"AND": [{"user_id": "a"}, {"created_at": {"lte": 1e999}}]}, "threshold": 1e999}',
    "surrogate": '{"messages": "\\udfff", "user_id": "\\ud800", "query": "\\udfff", "filters": {"user_id": '
    '"\\udfff"}, "memories": [{"memory_id": "\\udfff", "text": "\\udfff"}]}',
    "garbage": "\x00\xff{",
}


def _query(fields: dict) -> str:
    return "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in fields.items())


# Endpoints every key is refused whatever it may otherwise do (the members: KEY_REFUSALS).
KEY_NEVER = ("api-project-members",)

# --- 6. the Mem0-platform project, members and events routes, per principal kind.
KINDS = ("admin", "support", "viewer", "key", "key-restricted")


def _who(world, kind: str):
    return next(p for p in principals(world, world.acme, anonymous=False) if p.name == f"acme:{kind}")


def _event(world, slug: str, app_id: str) -> str:
    events = AuditEvent.objects.for_tenant(getattr(world, slug)).filter(action="memory.add", app_id=app_id)
    return str(events.first().event_id)


def _project(slug: str, tail: str = "") -> str:
    return f"/api/v1/orgs/organizations/{slug}/projects/{slug}/{tail}"


# kind -> expected status at its own tenant
PROJECT_GET = dict.fromkeys(KINDS, 200)
PROJECT_PATCH = {"admin": 200, "support": 403, "viewer": 403, "key": 200, "key-restricted": 403}
MEMBERS = {"admin": 200, "support": 403, "viewer": 403, "key": 403, "key-restricted": 403}
EVENTS = {"admin": 200, "support": 403, "viewer": 403, "key": 200, "key-restricted": 200}


def check_project_get_and_update(hostile_world, kind):
    who = _who(hostile_world, kind)
    got = send(who.client, "get", _project("acme"))
    assert got.status_code == PROJECT_GET[kind]
    expected_apps = ["concierge_app"] if kind == "key-restricted" else ["concierge_app", "sports_portal"]
    assert got.json()["apps"] == expected_apps and got.json()["project_id"] == "acme"
    changed = send(who.client, "patch", _project("acme"), {"custom_instructions": f"by {kind}", "org_id": "acme"})
    assert changed.status_code == PROJECT_PATCH[kind], changed.content
    stored = Tenant.objects.get(slug="acme").custom_instructions
    if PROJECT_PATCH[kind] == 200:
        assert stored == f"by {kind}" and changed.json()["custom_instructions"] == f"by {kind}"
        assert AuditEvent.objects.filter(action="project.update", tenant__slug="acme").count() == 1
    else:
        assert stored == "" and "project.update" in assert_json_error(changed)["detail"]
    assert Tenant.objects.get(slug="globex").custom_instructions == ""


def check_other_tenants_project_is_not_found(hostile_world, kind):
    who = _who(hostile_world, kind)
    for method, tail, body in [
        ("get", "", None),
        ("patch", "", {"custom_instructions": "x"}),
        ("delete", "", None),
        ("get", "members/", None),
        ("post", "members/", {"email": "x@y.example"}),
    ]:
        response = send(who.client, method, _project("globex", tail), body)
        own = send(who.client, method, _project("acme", tail), body).status_code if method != "post" else None
        # A role refusal that is the same at its own tenant says nothing about the other one.
        assert response.status_code == 404 or (response.status_code == 403 and own in (403, None)), (method, tail)
    mixed = send(who.client, "get", "/api/v1/orgs/organizations/acme/projects/globex/")
    assert_json_error(mixed, 404)
    assert Tenant.objects.get(slug="globex").custom_instructions == ""


def check_project_create_and_delete_are_refused_with_the_reason(hostile_world, kind):
    who = _who(hostile_world, kind)
    created = assert_json_error(
        send(who.client, "post", "/api/v1/orgs/organizations/acme/projects/", {"name": "new"}), 400
    )
    assert created["detail"].startswith("project.create: not supported by memadmin")
    assert created["error"]["code"] == "not_supported"
    deleted = assert_json_error(send(who.client, "delete", _project("acme")), 400)
    assert deleted["detail"].startswith("project.delete: not supported") and "offboard" in deleted["detail"]
    assert Tenant.objects.filter(slug="acme").exists()


def check_members_are_for_admin_sessions_only(hostile_world, kind):
    who = _who(hostile_world, kind)
    viewer = hostile_world.acme_viewer.user
    calls = [
        ("get", "members/", None),
        ("post", "members/", {"email": "newcomer@example.com", "role": "OWNER"}),
        ("put", "members/", {"email": viewer.email, "role": "OWNER"}),
        ("delete", f"members/?email={viewer.email}", None),
    ]
    for method, tail, body in calls:
        response = send(who.client, method, _project("acme", tail), body)
        if MEMBERS[kind] == 403:
            detail = assert_json_error(response, 403)["detail"]
            assert detail.startswith("project.")
            if kind.startswith("key"):
                assert "API keys never read or change the members" in detail
    roles = dict(Membership.objects.filter(tenant__slug="acme").values_list("user__username", "role"))
    if MEMBERS[kind] == 403:
        assert roles["acme-viewer"] == "viewer" and not mail.outbox
        assert not AuditEvent.objects.filter(action__startswith="member.").exists()
        refusals = AuditEvent.objects.filter(action="api.refused").values_list("details", flat=True)
        expected = 4 if kind.startswith("key") else 0  # a key reaching for the members is audited
        assert len(refusals) == expected and all(d["capability"] == "manage_members" for d in refusals)
    else:
        assert "acme-viewer" not in roles  # promoted, then removed
        assert [m.to for m in mail.outbox] == [["newcomer@example.com"]]
        actions = set(AuditEvent.objects.filter(tenant__slug="acme").values_list("action", flat=True))
        assert {"invitation.create", "member.role", "member.remove"} <= actions


def check_member_list_maps_roles(hostile_world, staff_client):
    members = send(staff_client("acme", "admin"), "get", _project("acme", "members/")).json()["members"]
    roles = {m["username"]: (m["role"], m["memadmin_role"]) for m in members}
    assert roles == {
        "acme-admin": ("OWNER", "admin"),
        "acme-support": ("SUPPORT", "support"),
        "acme-viewer": ("READER", "viewer"),
    }
    assert all("@" in m["email"] for m in members)


def check_the_last_admin_stays(hostile_world, staff_client):
    admin = staff_client("acme", "admin")
    email = hostile_world.acme_admin.user.email
    assert_json_error(send(admin, "put", _project("acme", "members/"), {"email": email, "role": "READER"}), 409)
    assert_json_error(send(admin, "delete", _project("acme", f"members/?email={email}")), 409)
    assert Membership.objects.get(pk=hostile_world.acme_admin.pk).role == "admin"


def check_members_of_another_tenant_are_not_found_by_email(hostile_world, staff_client):
    admin = staff_client("acme", "admin")
    email = hostile_world.globex_viewer.user.email
    assert_json_error(send(admin, "put", _project("acme", "members/"), {"email": email, "role": "OWNER"}), 404)
    assert_json_error(send(admin, "delete", _project("acme", f"members/?email={email}")), 404)
    assert Membership.objects.get(pk=hostile_world.globex_viewer.pk).role == "viewer"


def check_events_feed_and_event(hostile_world, kind):
    who = _who(hostile_world, kind)
    listed = send(who.client, "get", "/v1/events/")
    assert listed.status_code == EVENTS[kind]
    concierge = _event(hostile_world, "acme", "concierge_app")
    sports = _event(hostile_world, "acme", "sports_portal")
    if EVENTS[kind] == 403:
        assert assert_json_error(listed)["detail"].startswith("events: ")
        assert_json_error(send(who.client, "get", f"/v1/events/{concierge}/"), 403)
        return
    apps = {e["app_id"] for e in listed.json()["results"]}
    assert apps == ({"concierge_app"} if kind == "key-restricted" else {"concierge_app", "sports_portal"})
    assert "SECRET" not in listed.content.decode() and '"ip"' not in listed.content.decode()
    assert send(who.client, "get", f"/v1/events/{concierge}/").json()["status"] == "SUCCEEDED"
    outside = send(who.client, "get", f"/v1/events/{sports}/")
    assert outside.status_code == (404 if kind == "key-restricted" else 200)
    # The other tenant's event is not found, like one that does not exist.
    assert_json_error(send(who.client, "get", f"/v1/events/{_event(hostile_world, 'globex', 'concierge_app')}/"), 404)
    assert_json_error(send(who.client, "get", "/v1/events/00000000-0000-4000-8000-000000000000/"), 404)


PLATFORM_ONLY = [
    ("post", "/v1/summary/", {"filters": {"user_id": "alice"}}, "get_summary"),
    ("post", "/v1/feedback/", {"memory_id": "x", "feedback": "POSITIVE"}, "feedback"),
    (
        "post",
        "/v2/profiles/jobs/",
        {"operation": "trigger", "entity_type": "user", "entity_id": "alice"},
        "generate_profile",
    ),
    ("post", "/v2/profiles/jobs/", {"operation": "sample", "entity_type": "user"}, "sample_profiles"),
    ("get", "/v2/profiles/jobs/some-job/", None, "get_profile_job"),
    ("get", "/v2/profiles/settings/", None, "get_profile_settings"),
    ("post", "/v2/profiles/settings/", {"enabled": True}, "update_profile_settings"),
    ("get", "/v2/entities/user/alice/profile/", None, "get_profile"),
]


def check_platform_only_features_are_refused_by_name(hostile_world, kind):
    who = _who(hostile_world, kind)
    for method, path, body, name in PLATFORM_ONLY:
        detail = assert_json_error(send(who.client, method, path, body), 400)["detail"]
        assert detail.startswith(f"{name}: not supported by memadmin: "), detail


def check_deleting_an_entity_whose_id_ends_in_profile(hostile_world):
    scope = scope_for_membership(hostile_world.acme_admin)
    services.memory_add(scope=scope, app_id="concierge_app", user_id="eve/profile", messages="hi")
    who = _who(hostile_world, "key")
    deleted = send(who.client, "delete", "/v2/entities/user/eve/profile/")
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 1
    restricted = _who(hostile_world, "viewer")
    assert_json_error(send(restricted.client, "delete", "/v2/entities/user/alice/profile/"), 403)


# Which route each part-6 check belongs to; per principal kind (KINDS) or once (a staff_client of the world).
PER_KIND = {
    "api-project": (check_project_get_and_update, check_other_tenants_project_is_not_found),
    "api-project-create": (check_project_create_and_delete_are_refused_with_the_reason,),
    "api-project-members": (check_members_are_for_admin_sessions_only,),
    "api-events": (check_events_feed_and_event,),
    "api-summary": (check_platform_only_features_are_refused_by_name,),
}
ONCE = {
    "api-project-members": (
        check_member_list_maps_roles,
        check_the_last_admin_stays,
        check_members_of_another_tenant_are_not_found_by_email,
    ),
    "api-entity-profile": (check_deleting_an_entity_whose_id_ends_in_profile,),
}


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
        )
        for tenant in hostile_world.tenants
    }
    # Per tenant a tenant-wide webhook, whose name carries the tenant's marker and the text the app-restricted
    # key must never see (it sees only webhooks bound within its apps), and one bound to concierge_app.
    hostile_world.webhooks, hostile_world.concierge_webhooks = {}, {}
    for tenant in hostile_world.tenants:
        hostile_world.webhooks[tenant.slug] = Webhook.objects.create(
            tenant=tenant,
            name=f"{marker(tenant)} {OUTSIDE_CONCIERGE}",
            url=f"https://{tenant.slug}.invalid/hook",
            event_types=["memory_add"],
            secret=new_secret(),
            created_by="test",
        )
        bound = Webhook.objects.create(
            tenant=tenant,
            name=f"{marker(tenant)} concierge hook",
            secret=new_secret(),
            url=f"https://{tenant.slug}.invalid/c",
            event_types=["memory_add"],
            created_by="test",
        )
        bound.apps.set([tenant.apps.get(app_id="concierge_app")])
        hostile_world.concierge_webhooks[tenant.slug] = bound
    exports = Path(django_settings.DATA_DIR) / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    for tenant in hostile_world.tenants:
        result = exports / f"hostile-{tenant.slug}.json"
        result.write_text(json.dumps([marker(tenant)]))
        hostile_world.jobs[tenant.slug] = Job.objects.create(
            kind=Job.Kind.EXPORT_TENANT,
            tenant=tenant,
            requested_by="test",
            state=Job.State.SUCCEEDED,
            params={"format": "json", "gzip": False, "app_id": None},
            receipt={"note": marker(tenant)},
            result_file=str(result),
            result_expires_at="2999-01-01T00:00:00Z",
        )
    # Per tenant an erasure receipt of concierge_app, its actor carrying the tenant's marker.
    hostile_world.receipts = {
        tenant.slug: receipt_record(
            tenant_id=tenant.pk,
            tenant_slug=tenant.slug,
            kind="user",
            actor=marker(tenant),
            actor_kind="staff",
            role="support",
            per_app={"concierge_app": {"memories": 1}},
            verification={"remaining": 0},
            user_id="alice",
        )
        for tenant in hostile_world.tenants
    }
    return hostile_world


# --- the state every part starts from ------------------------------------------------------------------------


class _Rollback(Exception):
    pass


def _valkey_snapshot(raw) -> dict:
    """Every key of the (test) store: hashes by field (so that putting one back re-indexes it), the rest dumped."""
    snapshot = {}
    for key in raw.scan_iter(count=1000):
        if raw.type(key) == b"hash":
            snapshot[key] = ("hash", raw.hgetall(key), raw.pttl(key))
        else:
            snapshot[key] = ("dump", raw.dump(key), raw.pttl(key))
    return snapshot


def _valkey_restore(raw, snapshot: dict) -> None:
    extra = [key for key in raw.scan_iter(count=1000) if key not in snapshot]
    if extra:
        raw.delete(*extra)
    for key, (kind, value, ttl) in snapshot.items():
        if kind == "hash":
            pipe = raw.pipeline()
            pipe.delete(key)
            pipe.hset(key, mapping=value)
            if ttl > 0:
                pipe.pexpire(key, ttl)
            pipe.execute()
        else:
            raw.restore(key, max(ttl, 0), value, replace=True)


@pytest.fixture
def fresh(world, raw_valkey):
    """fresh(): a block that starts from the world as the fixture built it and leaves nothing behind (the
    database through a savepoint, the store by putting back every key, the mail outbox emptied)."""
    snapshot = _valkey_snapshot(raw_valkey)

    @contextmanager
    def block():
        mail.outbox.clear()
        try:
            with transaction.atomic():
                yield
                raise _Rollback
        except _Rollback:
            pass
        finally:
            _valkey_restore(raw_valkey, snapshot)
            mail.outbox.clear()

    return block


def _staff_client(world):
    def make(slug: str, role: str) -> Client:
        client = Client()
        client.force_login(getattr(world, f"{slug}_{role}").user)
        return client

    return make


def _dashboard_memories(world) -> SimpleNamespace:
    """The memories the dashboard cases name: alice's (concierge_app) in each tenant."""
    return SimpleNamespace(alice_food=world.memories["acme"][0], globex_alice=world.memories["globex"][0])


# --- the tables against the URLconf ---------------------------------------------------------------------------


def test_every_tenant_url_is_in_the_table_and_the_matrix():
    names = tenant_url_names()
    assert names == set(URL_CAPABILITIES)
    assert names == {name for name in DASHBOARD if "?" not in name}


def test_every_url_under_a_tenant_goes_through_the_gate():
    for route, p in _all_patterns(get_resolver().url_patterns):
        if "<slug:tenant_slug>" in route:
            assert _is_tenant_view(p.callback), route


def test_every_endpoint_and_method_has_a_capability():
    assert {name: set(methods) for name, methods in ENDPOINT_CAPABILITIES.items()} == api_endpoints()


def test_every_route_parameter_has_a_value(hostile_world):
    """A new route with a parameter nobody taught the suite fails here, instead of going untested."""
    known = set(PARAMETERS)
    unknown = {
        (route, m["parameter"]) for route, _ in ROUTES for m in CONVERTER.finditer(route) if m["parameter"] not in known
    }
    assert not unknown, unknown
    assert len(ROUTES) >= 40, ROUTES
    names = {entry.name for _, entry in ROUTES}
    assert {case.get("url", name) for name, case in DASHBOARD.items()} <= names
    assert set(ENDPOINT_CAPABILITIES) <= names
    assert set(PER_KIND) | set(ONCE) <= names


# --- the matrix ---------------------------------------------------------------------------------------------


def _dashboard_part(world, name: str, fresh) -> None:
    """Part 1 for one URL name: every role of Acme at Acme and at Globex, the outsider, nobody, GET on a mutation."""
    memories = _dashboard_memories(world)
    for case_name, case in DASHBOARD.items():
        if case.get("url", case_name) != name:
            continue
        for role in ROLES:
            for where in ("own", "other"):
                with fresh():
                    membership = getattr(world, f"acme_{role}")
                    tenant = world.acme if where == "own" else world.globex
                    t = _tenant_data(world, memories, tenant)
                    client = login(Client(), membership)
                    response = _consume(_request(client, case_name, case, t))
                    if where == "other":
                        expected = 404
                    elif role_can(role, URL_CAPABILITIES[case.get("url", case_name)]):
                        expected = case["ok"]
                    else:
                        expected = 403
                    assert response.status_code == expected, (case_name, role, where, response.content[:500])
        with fresh():
            t = _tenant_data(world, memories, world.acme)
            client = login(Client(), world.outsider)
            assert _request(client, case_name, case, t).status_code == 404, (case_name, "outsider")
        if "?" in case_name:
            continue
        with fresh():
            dummy = SimpleNamespace(
                app="x",
                memory=SimpleNamespace(id="x"),
                link=SimpleNamespace(pk=uuid.uuid4()),
                target=SimpleNamespace(pk=1),
                job=SimpleNamespace(pk=uuid.uuid4()),
                api_key=SimpleNamespace(prefix="x"),
                invitation=SimpleNamespace(pk=1),
                webhook=SimpleNamespace(pk=1),
                receipt=SimpleNamespace(pk=uuid.uuid4()),
                export_job=SimpleNamespace(pk=uuid.uuid4()),
            )
            kwargs = case["kwargs"](dummy) if "kwargs" in case else {}
            url = reverse(case_name, kwargs={"tenant_slug": "acme", **kwargs})
            client = Client()
            response = client.post(url) if case_name in MUTATIONS else client.get(url)
            assert response.status_code == 302 and response["Location"].startswith(reverse("login")), case_name
        if case_name in MUTATIONS:
            with fresh():
                t = _tenant_data(world, memories, world.acme)
                client = login(Client(), world.acme_admin)
                kwargs = case["kwargs"](t) if "kwargs" in case else {}
                url = reverse(case_name, kwargs={"tenant_slug": "acme", **kwargs})
                assert client.get(url).status_code == 405, (case_name, "GET")


def _api_roles_part(world, name: str, fresh) -> None:
    """Part 2 for one endpoint: each staff role, each method it serves: 403 exactly where the role lacks the
    method's capability."""
    for method, capability in ENDPOINT_CAPABILITIES.get(name, {}).items():
        for role in ROLES:
            with fresh():
                api = APIClient()
                api.force_login(getattr(world, f"acme_{role}").user)
                url = reverse(name, kwargs=API_KWARGS.get(name, {}))
                response = getattr(api, method.lower())(url, {}, format="json", HTTP_X_MEMADMIN_TENANT="acme")
                assert response.status_code != 500
                if role_can(role, capability):
                    assert response.status_code != 403, (name, method, role, response.content[:300])
                else:
                    assert response.status_code == 403, (name, method, role, response.content[:300])


def _api_keys_part(world, name: str, fresh) -> None:
    """Part 2 for API keys: a read-only key gets 403 exactly where the method writes or deletes (the refusal
    names the key as read-only), and an expired key 401 on every method, saying it expired."""
    for method, capability in ENDPOINT_CAPABILITIES.get(name, {}).items():
        for kind in ("read_only", "expired"):
            with fresh():
                api = APIClient()
                api.credentials(HTTP_AUTHORIZATION=f"Token {getattr(world.keys['acme'], kind)}")
                url = reverse(name, kwargs=API_KWARGS.get(name, {}))
                response = getattr(api, method.lower())(url, {}, format="json")
                assert response.status_code != 500, (name, method, kind)
                if kind == "expired":
                    assert response.status_code == 401 and "expired on" in response.json()["detail"], (name, method)
                elif capability in READ_ONLY_WITHHELD:
                    assert response.status_code == 403, (name, method, response.content[:300])
                    assert "This API key is read-only" in response.json()["detail"], (name, method)
                elif role_can("api", capability) and name not in KEY_NEVER:
                    assert response.status_code != 403, (name, method, response.content[:300])


def _principals_part(world, route: str) -> None:
    """Part 3: every principal of Acme, every method, at Acme's objects and at Globex's (and, on a link's pages,
    through the link the app-restricted key issued, which must stay inside that key's apps)."""
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
                forbidden = (
                    *(marker(t) for t in world.tenants if t.slug != granted),
                    "bob likes coffee",
                    *((OUTSIDE_CONCIERGE,) if variant else ()),
                )
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


def _hostile_bodies_part(world, route: str) -> None:
    """Part 5 (API paths): each hostile body with each method."""
    path = _fill(route, _targets(world, "acme"))
    key = world.keys["acme"].full
    client = Client(headers={"Authorization": f"Token {key}"})
    for name, raw in HOSTILE_BODIES.items():
        for method in METHODS:
            response = send(client, method, path, raw=raw)
            body = _check(response, path=path, forbidden=(marker(world.globex),), context=(name, method, path))
            if response.status_code < 300 and method in ("post", "put") and name in ("surrogate", "nan", "1e999"):
                pytest.fail(f"{name} accepted by {method.upper()} {path}: {body[:300]}")


def _hostile_ids_part(world, route: str) -> None:
    """Part 4: each hostile id in each path parameter, and in every id/text field of query strings and bodies."""
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
                    response = (
                        send(client, method, path, {"user_id": "alice"})
                        if is_api(path)
                        else getattr(client, method)(path)
                    )
                    _check(response, path=path, forbidden=forbidden, context=(param, repr(hostile)[:40], method))
        path = _fill(route, base)
        fields = {name: hostile for name in INPUT_FIELDS}
        if is_api(path):
            body = {
                **fields,
                "messages": hostile,
                "filters": {"user_id": hostile},
                "memories": [{"memory_id": hostile, "text": hostile}],
            }
            raw = json.dumps(body)  # a lone surrogate goes out as the JSON escape \udfff
            for method in METHODS:
                response = send(key, method, path + "?" + _query(fields), raw=raw)
                _check(response, path=path, forbidden=forbidden, context=("body", repr(hostile)[:40], method))
        else:
            for method in ("get", "post"):
                encoded = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in fields.items()}
                response = getattr(admin, method)(path + "?" + _query(fields), encoded)
                _check(response, path=path, forbidden=forbidden, context=("form", repr(hostile)[:40], method))


@pytest.mark.parametrize("route, entry", ROUTES, ids=ROUTE_IDS)
def test_access_matrix(world, fresh, route, entry):
    name = entry.name
    _dashboard_part(world, name, fresh)
    _api_roles_part(world, name, fresh)
    _api_keys_part(world, name, fresh)
    with fresh():
        _principals_part(world, route)
    with fresh():
        _hostile_ids_part(world, route)
    if is_api("/" + route):
        with fresh():
            _hostile_bodies_part(world, route)
    for check in PER_KIND.get(name, ()):
        for kind in KINDS:
            with fresh():
                check(world, kind)
    for check in ONCE.get(name, ()):
        with fresh():
            if "staff_client" in check.__code__.co_varnames[: check.__code__.co_argcount]:
                check(world, _staff_client(world))
            else:
                check(world)


def test_read_only_member_cannot_change_anything(client, world):
    """The viewer gets 403 on every mutation, and the memory is still there afterwards."""
    memories = _dashboard_memories(world)
    t = _tenant_data(world, memories, world.acme)
    login(client, world.acme_viewer)
    for name, case in DASHBOARD.items():
        if name in MUTATIONS:
            assert _request(client, name, case, t).status_code == 403, name
    assert Membership.objects.filter(pk=t.target.pk, role="viewer").exists()
    t.link.refresh_from_db()
    assert t.link.revoked_at is None
    client.force_login(world.acme_admin.user)
    assert client.get(reverse("memory", args=["acme", "concierge_app", memories.alice_food.id])).status_code == 200
