"""tenants/views/entities.py: the Agents and Runs pages (lists by id, one agent's or run's memories) and deleting
an agent's or a run's memories: preview per person and app, typed confirmation, one receipt per person."""

import pytest
from django.test import Client

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.models import ErasureReceipt
from tenants.scoping import scope_for_membership
from tests.support.dashboard import HTMX, login


@pytest.fixture
def sessions(world, add):
    """run-1: alice twice (concierge) and bob once; run-2: alice in sports_portal (coach); globex has its own run-1."""
    add(world.acme, "concierge_app", "alice", "Alice prefers window seats", agent_id="concierge", run_id="run-1")
    add(world.acme, "concierge_app", "alice", "Alice flies to Lisbon in May", agent_id="concierge", run_id="run-1")
    add(world.acme, "concierge_app", "bob", "Bob prefers aisle seats", agent_id="concierge", run_id="run-1")
    add(world.acme, "sports_portal", "alice", "Alice runs 10k on Saturdays", agent_id="coach", run_id="run-2")
    add(world.globex, "concierge_app", "carol", "Globex Carol likes sushi", agent_id="butler", run_id="run-1")


def count(world, **fields):
    return selectors.memory_count(scope=scope_for_membership(world.acme_admin), filters=filter_from_fields(**fields))


@pytest.mark.parametrize("role", ["admin", "support", "viewer"])
def test_every_role_reads_agents_and_runs_with_counts_of_its_tenant_only(client, world, sessions, role):
    login(client, getattr(world, f"acme_{role}"))
    agents = client.get("/t/acme/agents/").content.decode()
    assert 'data-entity="concierge"' in agents and 'data-entity="coach"' in agents
    assert 'data-entity="butler"' not in agents  # globex's
    row = agents[agents.index('data-entity="concierge"') :][:1500]
    assert 'data-testid="entity-count">3<' in row and 'data-testid="entity-people">2<' in row
    runs = client.get("/t/acme/runs/").content.decode()
    assert 'data-entity="run-1"' in runs and 'data-entity="run-2"' in runs
    page = client.get("/t/acme/runs/run/", {"run_id": "run-1"}).content.decode()
    assert "Alice prefers window seats" in page and "Globex Carol" not in page
    assert ('data-testid="entity-delete"' in page) is (role != "viewer")
    assert ('data-testid="bulk-bar"' in page) is (role != "viewer")
    assert "Agents</a>" in client.get("/t/acme/").content.decode()  # in the nav for every role


def test_prefix_search_app_filter_and_paging_to_the_end(support, world, add):
    for n in range(30):
        add(world.acme, "concierge_app", "alice", f"memory {n}", agent_id=f"bot-{n:02d}", infer=False)
    add(world.acme, "sports_portal", "alice", "Bottle", agent_id="Bottle", infer=False)
    found, after = [], None
    while True:
        page = support.get("/t/acme/agents/", {"q": "bot-", **({"after": after} if after else {})}, **HTMX)
        html = page.content.decode()
        found += [chunk.split('"', 1)[0] for chunk in html.split('data-entity="')[1:]]
        if 'data-testid="next"' not in html:
            break
        after = html.split('data-testid="next"')[0].rsplit("after=", 1)[1].split('"', 1)[0]
    assert found == [f"bot-{n:02d}" for n in range(30)]
    in_sports = support.get("/t/acme/agents/", {"app": "sports_portal"}).content.decode()
    assert 'data-entity="Bottle"' in in_sports and 'data-entity="bot-00"' not in in_sports


@pytest.mark.parametrize(
    "url, query",
    [
        ("/t/acme/agents/agent/", {"agent_id": "butler"}),  # globex's agent: not found, never forbidden
        ("/t/acme/runs/run/", {"run_id": "no-such-run"}),
        ("/t/acme/runs/run/", {"run_id": "run-1", "app": "sports_portal"}),  # no memory of run-1 there
    ],
)
def test_an_agent_or_run_outside_the_scope_is_not_found(support, sessions, url, query):
    assert support.get(url, query).status_code == 404


@pytest.mark.parametrize(
    "query", [{"run_id": ""}, {"run_id": "a\u202eb"}, {"run_id": "x" * 200}, {"run_id": "r", "app": "nope"}]
)
def test_bad_input_is_a_400_with_a_message(support, sessions, query):
    response = support.get("/t/acme/runs/run/", query)
    assert response.status_code == 400
    assert support.get("/t/acme/runs/", {"q": "a\u0000"}).status_code == 400


def test_the_run_page_previews_what_goes_and_deleting_ends_in_a_receipt_per_person(support, world, sessions):
    page = support.get("/t/acme/runs/run/", {"run_id": "run-1"}).content.decode()
    assert "<strong>3</strong> memories of <strong>2</strong> people in <strong>1</strong> app will be deleted" in page

    wrong = support.post("/t/acme/runs/run/delete/", {"run_id": "run-1", "confirm": "RUN-1"})
    assert wrong.status_code == 400 and count(world, run_id="run-1") == 3

    done = support.post("/t/acme/runs/run/delete/", {"run_id": "run-1", "confirm": "run-1"})
    assert done.status_code == 302 and "/t/acme/selection/deleted/?r=" in done["Location"]
    assert count(world, run_id="run-1") == 0 and count(world, run_id="run-2") == 1
    receipts = ErasureReceipt.objects.filter(tenant=world.acme).order_by("user_id")
    assert [(r.user_id, r.kind, r.memories) for r in receipts] == [("alice", "run", 2), ("bob", "run", 1)]
    result = support.get(done["Location"]).content.decode()
    assert 'data-testid="deleted">3<' in result and 'data-testid="remaining">0<' in result
    assert all(str(r.pk) in result for r in receipts)
    assert support.get(done["Location"]).status_code == 200  # a reload shows it again, deletes nothing
    assert support.get("/t/acme/runs/run/", {"run_id": "run-1"}).status_code == 404
    assert 'data-entity="run-1"' not in support.get("/t/acme/runs/").content.decode()
    # globex's run-1 is untouched
    globex = scope_for_membership(world.globex_admin)
    assert selectors.memory_count(scope=globex, filters=filter_from_fields(run_id="run-1")) == 1


def test_deleting_an_agent_in_one_app_keeps_its_memories_elsewhere(client, world, add):
    add(world.acme, "concierge_app", "alice", "Alice likes jazz", agent_id="helper", infer=False)
    add(world.acme, "sports_portal", "alice", "Alice swims", agent_id="helper", infer=False)
    admin = login(client, world.acme_admin)
    done = admin.post(
        "/t/acme/agents/agent/delete/", {"agent_id": "helper", "app": "sports_portal", "confirm": "helper"}
    )
    assert done.status_code == 302
    assert count(world, agent_id="helper") == 1 and count(world, agent_id="helper", app_id="concierge_app") == 1


def test_the_counts_partial_is_recounted_after_a_delete_in_place(support, world, sessions):
    headers = {**HTMX, "HTTP_HX_TARGET": "counts"}
    before = support.get("/t/acme/agents/agent/", {"agent_id": "concierge"}, **headers).content.decode()
    assert "<strong>3</strong> memories of <strong>2</strong> people" in before
    memory = selectors.memory_list(
        scope=scope_for_membership(world.acme_admin), filters=filter_from_fields(user_id="bob"), audit=False
    ).items[0]
    assert support.post(f"/t/acme/memories/concierge_app/{memory.id}/delete/", {"confirm": "yes"}).status_code == 302
    after = support.get("/t/acme/agents/agent/", {"agent_id": "concierge"}, **headers).content.decode()
    assert "<strong>2</strong> memories of <strong>1</strong> person" in after
    # ...and the deletion's preview, out of band
    assert 'id="delete" data-testid="entity-delete" hx-swap-oob="true"' in after
    assert "<strong>2</strong> memories of <strong>1</strong> person in <strong>1</strong> app will be deleted" in after


def test_viewers_cannot_delete(client, world, sessions):
    viewer = login(client, world.acme_viewer)
    response = viewer.post("/t/acme/runs/run/delete/", {"run_id": "run-1", "confirm": "run-1"})
    assert response.status_code == 403 and count(world, run_id="run-1") == 3
    assert Client().get("/t/acme/runs/").status_code == 302  # nobody: sent to sign in


def test_the_last_memory_deleted_in_place_leaves_counts_and_results_that_say_so(support, world, add):
    memory = add(world.acme, "concierge_app", "alice", "Alice likes jazz", agent_id="solo", infer=False)
    assert support.post(f"/t/acme/memories/concierge_app/{memory.id}/delete/", {"confirm": "yes"}).status_code == 302
    counts = support.get("/t/acme/agents/agent/", {"agent_id": "solo"}, HTTP_HX_TARGET="counts", **HTMX)
    assert counts.status_code == 200 and "<strong>0</strong> memories of <strong>0</strong> people" in counts.text
    results = support.get("/t/acme/agents/agent/", {"agent_id": "solo"}, HTTP_MEMADMIN_RECOUNT="1", **HTMX)
    assert results.status_code == 200 and "No memories left" in results.text
    assert support.get("/t/acme/agents/agent/", {"agent_id": "solo"}).status_code == 404
