"""The routes issue 14 added (the tenant as a Mem0 project, its members, the events feed, the refused platform
features), for every principal kind of one tenant (admin, support, viewer, unrestricted key, app-restricted key)
at its own tenant and at the other's: who gets what, and that the other tenant is always "not found"."""

from __future__ import annotations

import pytest
from django.core import mail

from memadmin.memory.models import AuditEvent
from tenants.models import Membership, Tenant
from tests.support.hostile import assert_json_error, principals, send

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


@pytest.mark.parametrize("kind", KINDS)
def test_project_get_and_update(hostile_world, kind):
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


@pytest.mark.parametrize("kind", KINDS)
def test_other_tenants_project_is_not_found(hostile_world, kind):
    who = _who(hostile_world, kind)
    for method, tail, body in [("get", "", None), ("patch", "", {"custom_instructions": "x"}), ("delete", "", None),
                               ("get", "members/", None), ("post", "members/", {"email": "x@y.example"})]:  # fmt: skip
        response = send(who.client, method, _project("globex", tail), body)
        own = send(who.client, method, _project("acme", tail), body).status_code if method != "post" else None
        # A role refusal that is the same at its own tenant says nothing about the other one.
        assert response.status_code == 404 or (response.status_code == 403 and own in (403, None)), (method, tail)
    mixed = send(who.client, "get", "/api/v1/orgs/organizations/acme/projects/globex/")
    assert_json_error(mixed, 404)
    assert Tenant.objects.get(slug="globex").custom_instructions == ""


@pytest.mark.parametrize("kind", KINDS)
def test_project_create_and_delete_are_refused_with_the_reason(hostile_world, kind):
    who = _who(hostile_world, kind)
    created = assert_json_error(send(who.client, "post", "/api/v1/orgs/organizations/acme/projects/",
                                     {"name": "new"}), 400)  # fmt: skip
    assert created["detail"].startswith("project.create: not supported by memadmin")
    assert created["error"]["code"] == "not_supported"
    deleted = assert_json_error(send(who.client, "delete", _project("acme")), 400)
    assert deleted["detail"].startswith("project.delete: not supported") and "offboard" in deleted["detail"]
    assert Tenant.objects.filter(slug="acme").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_members_are_for_admin_sessions_only(hostile_world, kind):
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


def test_member_list_maps_roles(hostile_world, staff_client):
    members = send(staff_client("acme", "admin"), "get", _project("acme", "members/")).json()["members"]
    roles = {m["username"]: (m["role"], m["memadmin_role"]) for m in members}
    assert roles == {"acme-admin": ("OWNER", "admin"), "acme-support": ("SUPPORT", "support"),
                     "acme-viewer": ("READER", "viewer")}  # fmt: skip
    assert all("@" in m["email"] for m in members)


def test_the_last_admin_stays(hostile_world, staff_client):
    admin = staff_client("acme", "admin")
    email = hostile_world.acme_admin.user.email
    assert_json_error(send(admin, "put", _project("acme", "members/"), {"email": email, "role": "READER"}), 409)
    assert_json_error(send(admin, "delete", _project("acme", f"members/?email={email}")), 409)
    assert Membership.objects.get(pk=hostile_world.acme_admin.pk).role == "admin"


def test_members_of_another_tenant_are_not_found_by_email(hostile_world, staff_client):
    admin = staff_client("acme", "admin")
    email = hostile_world.globex_viewer.user.email
    assert_json_error(send(admin, "put", _project("acme", "members/"), {"email": email, "role": "OWNER"}), 404)
    assert_json_error(send(admin, "delete", _project("acme", f"members/?email={email}")), 404)
    assert Membership.objects.get(pk=hostile_world.globex_viewer.pk).role == "viewer"


@pytest.mark.parametrize("kind", KINDS)
def test_events_feed_and_event(hostile_world, kind):
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
    ("post", "/v2/profiles/jobs/", {"operation": "trigger", "entity_type": "user", "entity_id": "alice"},
     "generate_profile"),
    ("post", "/v2/profiles/jobs/", {"operation": "sample", "entity_type": "user"}, "sample_profiles"),
    ("get", "/v2/profiles/jobs/some-job/", None, "get_profile_job"),
    ("get", "/v2/profiles/settings/", None, "get_profile_settings"),
    ("post", "/v2/profiles/settings/", {"enabled": True}, "update_profile_settings"),
    ("get", "/v2/entities/user/alice/profile/", None, "get_profile"),
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_platform_only_features_are_refused_by_name(hostile_world, kind):
    who = _who(hostile_world, kind)
    for method, path, body, name in PLATFORM_ONLY:
        detail = assert_json_error(send(who.client, method, path, body), 400)["detail"]
        assert detail.startswith(f"{name}: not supported by memadmin: "), detail


def test_deleting_an_entity_whose_id_ends_in_profile(hostile_world):
    from memadmin.memory import services
    from memadmin.memory.scope import scope_for_membership

    scope = scope_for_membership(hostile_world.acme_admin)
    services.memory_add(scope=scope, app_id="concierge_app", user_id="eve/profile", messages="hi")
    who = _who(hostile_world, "key")
    deleted = send(who.client, "delete", "/v2/entities/user/eve/profile/")
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 1
    restricted = _who(hostile_world, "viewer")
    assert_json_error(send(restricted.client, "delete", "/v2/entities/user/alice/profile/"), 403)
