"""Generated from tenants/permissions.PERMISSIONS: every dashboard URL x every role x own/other tenant.

Expected: role in the table -> the URL works; role not in the table -> 403; any role of the OTHER tenant
(and a user who belongs nowhere) -> 404. The URLconf and the table are cross-checked so that a new view
without a table entry, or a table entry without a view, fails here.
"""

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.urls import get_resolver, reverse
from django.utils import timezone

from tenants.models import DataLink, Invitation, Job, Membership, TenantAPIKey
from tenants.permissions import MUTATIONS, PERMISSIONS, ROLES
from tests.dashboard.conftest import login
from tests.factories import MembershipFactory, UserFactory

# url name -> how to call it. "action" must equal what the view declares (or, for "search", what it checks
# inside the browse view); "ok" is the status an allowed role gets.
CASES = {
    "overview": dict(action="overview", ok=200),
    "memories": dict(action="browse", ok=200),
    "memories?q": dict(action="search", url="memories", query={"q": "food"}, ok=200),
    "memory": dict(action="detail", kwargs=lambda t: {"app_id": t.app, "memory_id": t.memory.id}, ok=200),
    "memory_delete": dict(action="memory_delete", kwargs=lambda t: {"app_id": t.app, "memory_id": t.memory.id},
                          data={"confirm": "yes"}, ok=302),
    "app_export": dict(action="app_export", kwargs=lambda t: {"app_id": t.app}, query={"format": "json"}, ok=200),
    "users": dict(action="user_page", ok=200),
    "user": dict(action="user_page", query={"user_id": "alice"}, ok=200),
    "user_export": dict(action="user_export", query={"user_id": "alice", "format": "csv"}, ok=200),
    "user_delete": dict(action="user_delete", data={"user_id": "alice", "confirm_user_id": "alice"}, ok=200),
    "link_issue": dict(action="link_manage", data={"user_id": "alice", "days": "7"}, ok=302),
    "link_revoke": dict(action="link_manage", kwargs=lambda t: {"link_id": t.link.pk}, ok=302),
    "audit": dict(action="audit", ok=200),
    "audit_csv": dict(action="audit", ok=200),
    "members": dict(action="members", ok=200),
    "member_add": dict(action="member_change", data=lambda t: {"email": t.newcomer.email, "role": "viewer"},
                       ok=302),
    "invitation_resend": dict(action="member_change", kwargs=lambda t: {"invitation_id": t.invitation.pk}, ok=302),
    "invitation_cancel": dict(action="member_change", kwargs=lambda t: {"invitation_id": t.invitation.pk}, ok=302),
    "member_role": dict(action="member_change", kwargs=lambda t: {"member_id": t.target.pk}, data={"role": "support"},
                        ok=302),
    "member_remove": dict(action="member_change", kwargs=lambda t: {"member_id": t.target.pk}, ok=302),
    "api_keys": dict(action="api_keys", ok=200),
    "api_key_new": dict(action="api_key_change", data={"name": "crm"}, ok=200),
    "api_key_revoke": dict(action="api_key_change", kwargs=lambda t: {"prefix": t.api_key.prefix}, ok=302),
    # background jobs (tenants/views/jobs.py)
    "jobs": dict(action="jobs", ok=200),
    "job": dict(action="jobs", kwargs=lambda t: {"job_id": t.job.pk}, ok=200),
    "job_receipt": dict(action="jobs", kwargs=lambda t: {"job_id": t.job.pk}, ok=200),
    "job_download": dict(action="job_download", kwargs=lambda t: {"job_id": t.job.pk}, ok=200),
    "job_cancel": dict(action="job_cancel", kwargs=lambda t: {"job_id": t.job.pk}, ok=302),
    "app_offboard": dict(action="app_offboard", kwargs=lambda t: {"app_id": t.app}, ok=200),
    "app_offboard_start": dict(action="app_offboard_start", kwargs=lambda t: {"app_id": t.app},
                               data=lambda t: {"confirm_app_id": t.app}, ok=302),
    "app_export_job": dict(action="app_export_job", kwargs=lambda t: {"app_id": t.app}, data={"format": "json"},
                           ok=302),
    "tenant_export_job": dict(action="app_export_job", data={"format": "json"}, ok=302),
    "user_erase": dict(action="user_erase", data={"user_id": "alice", "confirm_user_id": "alice"}, ok=302),
}  # fmt: skip


def _declared_action(view):
    while view is not None:  # login_required / require_http_methods wrap the permission gate
        if hasattr(view, "permission_action"):
            return view.permission_action
        view = getattr(view, "__wrapped__", None)
    return None


def tenant_url_names() -> dict[str, str]:
    """Every URL whose view went through tenant_view, with the action it declared."""
    names = {}
    for pattern in get_resolver().url_patterns:
        for p in getattr(pattern, "url_patterns", [pattern]):
            action = _declared_action(getattr(p, "callback", None))
            if action:
                names[p.name] = action
    return names


def test_every_tenant_url_is_in_the_matrix_with_its_declared_action():
    declared = tenant_url_names()
    cased = {name.split("?")[0]: case["action"] for name, case in CASES.items() if "?" not in name}
    assert cased == declared


def test_every_action_of_the_table_is_exercised():
    assert {case["action"] for case in CASES.values()} == set(PERMISSIONS)


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
    action = case["action"]
    if action in MUTATIONS:
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
    elif role in PERMISSIONS[case["action"]]:
        expected = case["ok"]
    else:
        expected = 403
    assert response.status_code == expected, response.content[:500]


@pytest.mark.parametrize("name", list(CASES))
def test_outsider_gets_404_everywhere(client, world, memories, name):
    t = _tenant_data(world, memories, world.acme)
    login(client, world.outsider)
    assert _request(client, name, CASES[name], t).status_code == 404


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c["action"] in MUTATIONS])
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
                            api_key=SimpleNamespace(prefix="x"), invitation=SimpleNamespace(pk=1))  # fmt: skip
    url = reverse(name, kwargs={"tenant_slug": "acme", **(case["kwargs"](dummy) if "kwargs" in case else {})})
    response = client.post(url) if case["action"] in MUTATIONS else client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_read_only_member_cannot_change_anything(client, world, memories):
    """The viewer gets 403 on every mutation, and the memory is still there afterwards."""
    t = _tenant_data(world, memories, world.acme)
    login(client, world.acme_viewer)
    for name, case in CASES.items():
        if case["action"] in MUTATIONS:
            assert _request(client, name, case, t).status_code == 403, name
    assert Membership.objects.filter(pk=t.target.pk, role="viewer").exists()
    t.link.refresh_from_db()
    assert t.link.revoked_at is None
    client.force_login(world.acme_admin.user)
    assert client.get(reverse("memory", args=["acme", "concierge_app", memories.alice_food.id])).status_code == 200
