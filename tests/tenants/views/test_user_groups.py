"""tenants/views/users.py: a person's runs and agents on their page, and deleting one run or one agent's
memories of that person by clicks (typed confirmation, the shared erasure path, audited)."""

import pytest
from django.test import Client

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tenants.scoping import scope_for_membership
from tests.support.dashboard import events, login


@pytest.fixture
def sessions(world, add):
    """alice: two memories in run-1 (concierge), one in run-2 (coach), one outside any run; bob in run-1 too."""
    add(world.acme, "concierge_app", "alice", "Alice prefers window seats", agent_id="concierge", run_id="run-1")
    add(world.acme, "concierge_app", "alice", "Alice flies to Lisbon in May", agent_id="concierge", run_id="run-1")
    add(world.acme, "sports_portal", "alice", "Alice runs 10k on Saturdays", agent_id="coach", run_id="run-2")
    add(world.acme, "sports_portal", "alice", "Alice likes green tea", agent_id="coach")
    add(world.acme, "concierge_app", "bob", "Bob prefers aisle seats", agent_id="concierge", run_id="run-1")


def count(world, **fields):
    return selectors.memory_count(scope=scope_for_membership(world.acme_admin), filters=filter_from_fields(**fields))


def test_the_user_page_lists_the_persons_runs_and_agents_with_counts(support, world, sessions):
    html = support.get("/t/acme/user/", {"user_id": "alice"}).content.decode()
    assert 'data-run="run-1"' in html and 'data-run="run-2"' in html
    assert 'data-agent="concierge"' in html and 'data-agent="coach"' in html
    run_1 = html[html.index('data-run="run-1"') :]
    assert '<td class="num" data-label="Memories" data-testid="run-count">2</td>' in run_1[:800]  # alice's, not bob's
    # A run links to the browser with the person kept in the filter.
    assert "/t/acme/memories/?user_id=alice&amp;run_id=run-1" in html
    assert "Delete this run" in html and "Delete this agent's memories of this person" in html


def test_support_deletes_one_run_of_one_person(support, world, sessions):
    response = support.post("/t/acme/user/run/delete/", {"user_id": "alice", "run_id": "run-1", "confirm": "run-1"})
    assert response.status_code == 302 and response["Location"].endswith("/t/acme/user/?user_id=alice#runs")
    assert count(world, user_id="alice", run_id="run-1") == 0
    assert count(world, user_id="bob", run_id="run-1") == 1  # bob's memory of the same run stays
    assert count(world, user_id="alice") == 2
    row = events("memory.delete_matching", user_id="alice").get()
    assert row.count == 2 and row.details["filter"] == r"(@user_id:{alice} @run_id:{run\-1})"
    page = support.get(response["Location"]).content.decode()
    assert "Deleted run run-1: 2 memories, counted 0 remaining in the store." in page
    assert 'data-run="run-1"' not in page and 'data-run="run-2"' in page


def test_support_deletes_one_agents_memories_of_one_person(support, world, sessions):
    data = {"user_id": "alice", "agent_id": "coach", "confirm": "coach"}
    assert support.post("/t/acme/user/agent/delete/", data).status_code == 302
    assert count(world, user_id="alice", agent_id="coach") == 0
    assert count(world, user_id="alice", agent_id="concierge") == 2


def test_a_wrong_typed_id_or_bad_input_deletes_nothing(support, world, sessions):
    wrong = support.post("/t/acme/user/run/delete/", {"user_id": "alice", "run_id": "run-1", "confirm": "RUN-1"})
    assert wrong.status_code == 400 and "does not match the run id" in wrong.content.decode()
    missing = support.post("/t/acme/user/agent/delete/", {"user_id": "alice", "confirm": "coach"})
    assert missing.status_code == 400
    bad = support.post("/t/acme/user/run/delete/", {"user_id": "al\x00ice", "run_id": "run-1", "confirm": "run-1"})
    assert bad.status_code == 400
    assert count(world, user_id="alice") == 4


def test_deleting_a_run_is_post_only_and_refused_to_viewers_and_outsiders(client, world, sessions):
    data = {"user_id": "alice", "run_id": "run-1", "confirm": "run-1"}
    support = login(Client(), world.acme_support)
    assert support.get("/t/acme/user/run/delete/", data).status_code == 405
    assert support.get("/t/acme/user/agent/delete/").status_code == 405
    viewer = login(Client(), world.acme_viewer)
    assert viewer.post("/t/acme/user/run/delete/", data).status_code == 403
    assert viewer.post("/t/acme/user/agent/delete/", {**data, "agent_id": "coach"}).status_code == 403
    outsider = login(Client(), world.outsider)
    assert outsider.post("/t/acme/user/run/delete/", data).status_code == 404
    globex = login(Client(), world.globex_admin)  # another tenant's admin: acme does not exist for them
    assert globex.post("/t/acme/user/run/delete/", data).status_code == 404
    assert count(world, user_id="alice", run_id="run-1") == 2
