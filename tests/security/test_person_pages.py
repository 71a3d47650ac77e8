"""A person's pages: deleting a run or an agent's memories reaches only the member's own tenant, a tenant-wide
list never tells one person about another, and the Data links page lists only the tenant's own links. The
URLs themselves are in the hostile matrix (tests/security/test_hostile_matrix.py walks the URLconf)."""

from django.test import Client

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tenants.scoping import scope_for_membership
from tenants.transparency import person_accesses
from tests.support.hostile import marker


def stored(world, slug: str, **fields) -> int:
    scope = scope_for_membership(getattr(world, f"{slug}_admin"))
    return selectors.memory_count(scope=scope, filters=filter_from_fields(**fields))


def test_a_run_or_agent_deletion_never_leaves_the_members_tenant(hostile_world, staff_client):
    support = staff_client("acme", "support")
    before = stored(hostile_world, "globex", user_id="alice")
    run = support.post("/t/acme/user/run/delete/", {"user_id": "alice", "run_id": "run-1", "confirm": "run-1"})
    agent = support.post(
        "/t/acme/user/agent/delete/", {"user_id": "alice", "agent_id": "concierge", "confirm": "concierge"}
    )
    assert run.status_code == agent.status_code == 302
    assert stored(hostile_world, "acme", user_id="alice", run_id="run-1") == 0
    assert stored(hostile_world, "globex", user_id="alice") == before  # the same ids at another tenant
    # Aimed at globex by name: globex does not exist for an acme member.
    aimed = support.post("/t/globex/user/run/delete/", {"user_id": "alice", "run_id": "run-1", "confirm": "run-1"})
    assert aimed.status_code == 404 and stored(hostile_world, "globex", user_id="alice") == before


def test_a_tenant_wide_list_names_each_person_only_on_their_own_list(hostile_world, staff_client):
    viewer = staff_client("acme", "viewer")
    assert viewer.get("/t/acme/memories/").status_code == 200
    for user_id in ("alice", "bob"):
        lines = [g["what"] for g in person_accesses(tenant=hostile_world.acme, user_id=user_id)["accesses"]]
        assert any(w.startswith("listed") and w.endswith("on the memory browser") for w in lines), lines
    # globex's alice was not on acme's page, and acme's rows never reach globex's people.
    assert all(
        g["actor"] != "acme-viewer" for g in person_accesses(tenant=hostile_world.globex, user_id="alice")["accesses"]
    )


def test_the_data_links_page_lists_the_tenants_own_links_only(hostile_world, staff_client):
    html = staff_client("acme", "admin").get("/t/acme/links/").content.decode()
    assert str(hostile_world.links["acme"].row.pk) in html
    assert str(hostile_world.links["globex"].row.pk) not in html and marker(hostile_world.globex) not in html
    globex_link = hostile_world.links["globex"].row.pk
    # Revoking another tenant's link: not found, asked or confirmed, and it still works.
    for data in ({}, {"confirm": "yes"}):
        assert staff_client("acme", "admin").post(f"/t/acme/links/{globex_link}/revoke/", data).status_code == 404
    assert Client().get(hostile_world.links["globex"].path).status_code == 200
