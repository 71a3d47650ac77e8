"""Agents, runs and bulk selection: a deletion or an export never leaves the member's tenant, ids and apps of
another tenant are not found (never forbidden), and a count typed back that the store no longer holds deletes
nothing. The URLs themselves are in the access matrix (tests/security/test_access_matrix.py)."""

from memadmin.memory import selectors, services
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.models import ErasureReceipt
from tenants.scoping import scope_for_membership
from tests.support.hostile import marker


def stored(world, slug: str, **fields) -> int:
    scope = scope_for_membership(getattr(world, f"{slug}_admin"))
    return selectors.memory_count(scope=scope, filters=filter_from_fields(**fields))


def test_an_agent_or_run_of_the_same_name_at_another_tenant_is_never_touched(hostile_world, staff_client):
    support = staff_client("acme", "support")
    globex_before = stored(hostile_world, "globex")
    page = support.get("/t/acme/runs/run/", {"run_id": "run-1"})
    assert page.status_code == 200 and marker(hostile_world.globex) not in page.content.decode()
    done = support.post("/t/acme/runs/run/delete/", {"run_id": "run-1", "confirm": "run-1"})
    agent = support.post("/t/acme/agents/agent/delete/", {"agent_id": "concierge", "confirm": "concierge"})
    assert done.status_code == agent.status_code == 302
    assert stored(hostile_world, "acme", run_id="run-1") == 0 and stored(hostile_world, "globex") == globex_before
    assert support.post("/t/globex/runs/run/delete/", {"run_id": "run-1", "confirm": "run-1"}).status_code == 404


def test_another_tenants_app_or_rows_in_a_selection_are_not_found(hostile_world, staff_client):
    support = staff_client("acme", "support")
    globex_row = hostile_world.memories["globex"][0]
    before = stored(hostile_world, "acme"), stored(hostile_world, "globex")
    cases = [
        {"all": "1", "user_id": "alice", "app_id": "other_app", "confirm": "1"},  # globex's app
        {"m": f"concierge_app {globex_row.id}", "confirm": "1"},  # globex's memory, in an app acme also has
        {"m": f"other_app {globex_row.id}", "confirm": "1"},
    ]
    for data in cases:
        for url in ("/t/acme/selection/delete/", "/t/acme/selection/export/"):
            response = staff_client("acme", "admin").post(url, data) if "export" in url else support.post(url, data)
            assert response.status_code == 404, (url, data, response.status_code)
    assert (stored(hostile_world, "acme"), stored(hostile_world, "globex")) == before


def test_a_count_the_store_no_longer_holds_deletes_nothing(hostile_world, staff_client):
    support = staff_client("acme", "support")
    preview = support.post("/t/acme/selection/delete/", {"all": "1", "user_id": "alice"}).content.decode()
    assert "<strong>2</strong> memories of <strong>1</strong> person" in preview
    # Someone adds a memory of alice between the preview and the confirmation.
    scope = scope_for_membership(hostile_world.acme_admin)
    services.memory_add(scope=scope, app_id="concierge_app", user_id="alice", messages="alice likes jam")
    response = support.post("/t/acme/selection/delete/", {"all": "1", "user_id": "alice", "confirm": "2"})
    assert response.status_code == 400 and "now holds 3 memories, not 2" in response.content.decode()
    assert stored(hostile_world, "acme", user_id="alice") == 3 and not ErasureReceipt.objects.exists()
