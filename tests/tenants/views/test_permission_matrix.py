"""Generated from tenants/permissions.URL_CAPABILITIES and memadmin/memory/capabilities.py: every dashboard
URL x every role x own/other tenant.

Expected: the role has the URL's capability -> the URL works; it has not -> 403; any role of the OTHER tenant
(and a user who belongs nowhere) -> 404. The URLconf and the table are cross-checked so that a new tenant view
without a table entry, or a table entry without a view, fails here.
"""

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import get_resolver, reverse
from django.utils import timezone

from memadmin.memory.capabilities import role_can
from tenants.models import DataLink, Invitation, Job, Membership, TenantAPIKey, Webhook
from tenants.permissions import MUTATIONS, ROLES, URL_CAPABILITIES
from tenants.webhooks.services import new_secret
from tests.factories import MembershipFactory, UserFactory
from tests.support.dashboard import login

# url name -> how to call it; "ok" is the status a role with the URL's capability gets.
CASES = {
    "overview": dict(ok=200),
    "memories": dict(ok=200),
    "memories?q": dict(url="memories", query={"q": "food"}, ok=200),
    "memory": dict(kwargs=lambda t: {"app_id": t.app, "memory_id": t.memory.id}, ok=200),
    "memory_delete": dict(kwargs=lambda t: {"app_id": t.app, "memory_id": t.memory.id},
                          data={"confirm": "yes"}, ok=302),
    "app": dict(kwargs=lambda t: {"app_id": t.app}, ok=200),
    "app_export": dict(kwargs=lambda t: {"app_id": t.app}, query={"format": "json"}, ok=200),
    "users": dict(ok=200),
    "user": dict(query={"user_id": "alice"}, ok=200),
    "user_suggest": dict(query={"user_id": "al"}, ok=200),
    "user_export": dict(query={"user_id": "alice", "format": "csv"}, ok=200),
    "user_delete": dict(data={"user_id": "alice", "confirm_user_id": "alice"}, ok=302),  # post-redirect-get
    "link_issue": dict(data={"user_id": "alice", "days": "7"}, ok=302),
    "link_revoke": dict(kwargs=lambda t: {"link_id": t.link.pk}, ok=302),
    "audit": dict(ok=200),
    "audit_csv": dict(ok=200),
    "members": dict(ok=200),
    "member_add": dict(data=lambda t: {"email": t.newcomer.email, "role": "viewer"}, ok=302),
    "invitation_resend": dict(kwargs=lambda t: {"invitation_id": t.invitation.pk}, ok=302),
    "invitation_cancel": dict(kwargs=lambda t: {"invitation_id": t.invitation.pk}, ok=302),
    "member_role": dict(kwargs=lambda t: {"member_id": t.target.pk}, data={"role": "support", "confirm": "yes"},
                        ok=302),
    "member_remove": dict(kwargs=lambda t: {"member_id": t.target.pk}, data={"confirm": "yes"}, ok=302),
    "api_keys": dict(ok=200),
    "api_key_new": dict(data={"name": "crm"}, ok=302),
    "api_key_revoke": dict(kwargs=lambda t: {"prefix": t.api_key.prefix}, ok=302),
    # background jobs (tenants/views/jobs.py)
    "jobs": dict(ok=200),
    "job": dict(kwargs=lambda t: {"job_id": t.job.pk}, ok=200),
    "job_receipt": dict(kwargs=lambda t: {"job_id": t.job.pk}, ok=200),
    "job_download": dict(kwargs=lambda t: {"job_id": t.job.pk}, ok=200),
    "job_cancel": dict(kwargs=lambda t: {"job_id": t.job.pk}, ok=302),
    "app_offboard": dict(kwargs=lambda t: {"app_id": t.app}, ok=200),
    "app_offboard_start": dict(kwargs=lambda t: {"app_id": t.app},
                               data=lambda t: {"confirm_app_id": t.app}, ok=302),
    "app_move": dict(kwargs=lambda t: {"app_id": t.app}, ok=200),
    # One store here: the only one is the app's own, a clear 400 (two stores: tests/tenants/views/test_app_move.py)
    "app_move_start": dict(kwargs=lambda t: {"app_id": t.app},
                           data=lambda t: {"store": "default", "confirm_app_id": t.app}, ok=400),
    "app_export_job": dict(kwargs=lambda t: {"app_id": t.app}, data={"format": "json"},
                           ok=302),
    "tenant_export_job": dict(data={"format": "json"}, ok=302),
    "user_erase": dict(data={"user_id": "alice", "confirm_user_id": "alice"}, ok=302),
    # webhooks (tenants/views/webhooks.py); hooks.invalid never resolves, so the test event fails fast
    "webhooks": dict(ok=200),
    "webhook_new": dict(data={"name": "crm", "url": "https://hooks.invalid/in", "event_types": "memory_add"},
                        ok=200),
    "webhook": dict(kwargs=lambda t: {"webhook_id": t.webhook.pk}, ok=200),
    "webhook_edit": dict(kwargs=lambda t: {"webhook_id": t.webhook.pk},
                         data={"name": "crm", "url": "https://hooks.invalid/in", "event_types": "memory_delete",
                               "is_active": "on"}, ok=302),
    "webhook_test": dict(kwargs=lambda t: {"webhook_id": t.webhook.pk}, ok=302),
    "webhook_rotate": dict(kwargs=lambda t: {"webhook_id": t.webhook.pk}, data={"confirm": "yes"}, ok=200),
    "webhook_delete": dict(kwargs=lambda t: {"webhook_id": t.webhook.pk}, data={"confirm": "yes"}, ok=302),
    # imports (tenants/views/imports.py)
    "app_import": dict(kwargs=lambda t: {"app_id": t.app}, ok=200),
    "app_import_start": dict(kwargs=lambda t: {"app_id": t.app}, ok=302, data=lambda t: {"file": SimpleUploadedFile(
        "m.ndjson", b'{"id": "m1", "memory": "imported", "user_id": "alice"}\n')}),
    "collection_register": dict(ok=200),
    "collection_register_save": dict(data={"app_id": "adopted", "collection_name": "oss_bot"}, ok=200),
}  # fmt: skip


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


def test_every_tenant_url_is_in_the_table_and_the_matrix():
    names = tenant_url_names()
    assert names == set(URL_CAPABILITIES)
    assert names == {name for name in CASES if "?" not in name}


def test_every_url_under_a_tenant_goes_through_the_gate():
    for route, p in _all_patterns(get_resolver().url_patterns):
        if "<slug:tenant_slug>" in route:
            assert _is_tenant_view(p.callback), route


def _tenant_data(world, memories, tenant):
    t = SimpleNamespace(slug=tenant.slug, app="concierge_app")
    t.memory = memories.alice_food if tenant == world.acme else memories.globex_alice
    t.link = DataLink.objects.create(tenant=tenant, user_id="alice", created_by="x",
                                     expires_at=timezone.now() + timezone.timedelta(days=1))  # fmt: skip
    t.target = MembershipFactory(tenant=tenant, role="viewer", user=UserFactory(username=f"{tenant.slug}-target"))
    t.newcomer = UserFactory(username=f"{tenant.slug}-newcomer")
    t.invitation = Invitation.objects.create(tenant=tenant, email=f"{tenant.slug}-invitee@example.com",
                                             token_hash=uuid.uuid4().hex,
                                             expires_at=timezone.now() + timezone.timedelta(days=1))  # fmt: skip
    t.api_key, _ = TenantAPIKey.objects.create_key(name=f"{tenant.slug}-key", tenant=tenant)
    t.webhook = Webhook.objects.create(tenant=tenant, name=f"{tenant.slug}-hook", url="https://hooks.invalid/x",
                                       event_types=["memory_add"], secret=new_secret(), created_by="x")  # fmt: skip
    result = Path(settings.DATA_DIR) / f"matrix-{tenant.slug}-{uuid.uuid4().hex}.json"
    result.write_text("[]")
    t.job = Job.objects.create(kind=Job.Kind.ERASE_USER, tenant=tenant, params={"user_id": "alice"},
                               requested_by="someone", receipt={"per_app": {}}, result_file=str(result),
                               result_expires_at=timezone.now() + timezone.timedelta(hours=1))  # fmt: skip
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


MATRIX = [(name, role, where) for name in CASES for role in ROLES for where in ("own", "other")]


@pytest.mark.parametrize("name,role,where", MATRIX, ids=[f"{n}-{r}-{w}" for n, r, w in MATRIX])
def test_permission_matrix(client, world, memories, name, role, where):
    case = CASES[name]
    membership = getattr(world, f"acme_{role}")
    tenant = world.acme if where == "own" else world.globex
    t = _tenant_data(world, memories, tenant)
    login(client, membership)
    response = _consume(_request(client, name, case, t))
    if where == "other":
        expected = 404
    elif role_can(role, URL_CAPABILITIES[case.get("url", name)]):
        expected = case["ok"]
    else:
        expected = 403
    assert response.status_code == expected, response.content[:500]


@pytest.mark.parametrize("name", list(CASES))
def test_outsider_gets_404_everywhere(client, world, memories, name):
    t = _tenant_data(world, memories, world.acme)
    login(client, world.outsider)
    assert _request(client, name, CASES[name], t).status_code == 404


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutations_are_post_only(client, world, memories, name):
    t = _tenant_data(world, memories, world.acme)
    login(client, world.acme_admin)
    case = CASES[name]
    url = reverse(name, kwargs={"tenant_slug": "acme", **(case["kwargs"](t) if "kwargs" in case else {})})
    assert client.get(url).status_code == 405


@pytest.mark.parametrize("name", [n for n in CASES if "?" not in n])
def test_anonymous_is_sent_to_sign_in(client, db, name):
    case = CASES[name]
    dummy = SimpleNamespace(app="x", memory=SimpleNamespace(id="x"), link=SimpleNamespace(pk=uuid.uuid4()),
                            target=SimpleNamespace(pk=1), job=SimpleNamespace(pk=uuid.uuid4()),
                            api_key=SimpleNamespace(prefix="x"), invitation=SimpleNamespace(pk=1),
                            webhook=SimpleNamespace(pk=1))  # fmt: skip
    url = reverse(name, kwargs={"tenant_slug": "acme", **(case["kwargs"](dummy) if "kwargs" in case else {})})
    response = client.post(url) if name in MUTATIONS else client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_read_only_member_cannot_change_anything(client, world, memories):
    """The viewer gets 403 on every mutation, and the memory is still there afterwards."""
    t = _tenant_data(world, memories, world.acme)
    login(client, world.acme_viewer)
    for name, case in CASES.items():
        if name in MUTATIONS:
            assert _request(client, name, case, t).status_code == 403, name
    assert Membership.objects.filter(pk=t.target.pk, role="viewer").exists()
    t.link.refresh_from_db()
    assert t.link.revoked_at is None
    client.force_login(world.acme_admin.user)
    assert client.get(reverse("memory", args=["acme", "concierge_app", memories.alice_food.id])).status_code == 200
