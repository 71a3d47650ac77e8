"""Agents and runs pages (memadmin/memory/entity_lists.py through selectors.memory_entities / memory_entity):
ids in order to the last page, prefix search, counts in scope from the engine, nothing outside the scope."""

import time

import pytest

from memadmin.memory import selectors, services
from memadmin.memory.errors import NotFound, ValidationError
from memadmin.memory.filters import filter_from_fields
from tests.memadmin.memory.rawhash import put_many


def seed(raw, collection, rows):
    return put_many(raw, collection, rows)


def walk(scope, field, **kwargs):
    seen, after = [], None
    while True:
        page = selectors.memory_entities(scope=scope, field=field, after=after, **kwargs)
        seen.extend(page.items)
        if page.next_after is None:
            return seen
        after = page.next_after


def test_pages_walk_every_agent_once_in_id_order_with_exact_counts(world, raw_valkey):
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    base = int(time.time()) - 5000
    rows = [
        {"text": f"m{i}", "user_id": f"u{i % 7}", "agent_id": f"agent-{i % 23:02d}", "created_at": base + i}
        for i in range(230)
    ]
    seed(raw_valkey, world.acme_concierge.collection_name, rows)
    # agent-00 also lives in the other app, with a person already counted there and a new one
    seed(
        raw_valkey,
        world.acme_sports.collection_name,
        [
            {"text": "x", "user_id": "u0", "agent_id": "agent-00", "created_at": base - 100},
            {"text": "y", "user_id": "zed", "agent_id": "agent-00", "created_at": base + 9999},
        ],
    )

    agents = walk(scope, "agent_id", page_size=5)

    assert [a.id for a in agents] == [f"agent-{n:02d}" for n in range(23)]
    by_id = {a.id: a for a in agents}
    assert by_id["agent-01"].count == 10 and by_id["agent-01"].apps == ["concierge_app"]
    first = by_id["agent-00"]
    assert first.count == 12 and first.apps == ["concierge_app", "sports_portal"]
    assert first.people == 7 + 1  # u0..u6 (u0 in both apps, once) and zed
    assert first.first_write.timestamp() == base - 100 and first.last_write.timestamp() == base + 9999


def test_prefix_search_is_exact_and_case_sensitive(world, raw_valkey):
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    seed(
        raw_valkey,
        world.acme_concierge.collection_name,
        [
            {"text": "a", "user_id": "u", "agent_id": "Booker"},
            {"text": "b", "user_id": "u", "agent_id": "booker-2"},
            {"text": "c", "user_id": "u", "agent_id": "a,b"},
            {"text": "d", "user_id": "u", "agent_id": "bookkeeper"},
        ],
    )

    page = selectors.memory_entities(scope=scope, field="agent_id", prefix="book")

    assert [a.id for a in page.items] == ["booker-2", "bookkeeper"]
    assert [a.id for a in selectors.memory_entities(scope=scope, field="agent_id", prefix="a,").items] == ["a,b"]


def test_deleted_agents_and_other_tenants_never_show(world, raw_valkey, add):
    acme, globex = world.admin(world.acme), world.admin(world.globex)
    kept = add(acme, "concierge_app", "alice", "likes tea", agent_id="kept", infer=False)
    gone = add(acme, "concierge_app", "alice", "likes coffee", agent_id="gone", infer=False)
    add(globex, "concierge_app", "alice", "globex memory", agent_id="theirs", infer=False)
    services.memory_delete(scope=acme, memory_id=gone.id)

    page = selectors.memory_entities(scope=acme, field="agent_id")

    assert [a.id for a in page.items] == ["kept"] and page.items[0].count == 1
    assert kept.agent_id == "kept"
    with pytest.raises(NotFound):
        selectors.memory_entity(scope=acme, field="agent_id", value="theirs")
    with pytest.raises(NotFound):
        selectors.memory_entity(scope=acme, field="agent_id", value="gone")
    assert selectors.memory_entity(scope=globex, field="agent_id", value="theirs").count == 1


def test_runs_are_counted_inside_a_filter_and_bad_input_is_a_validation_error(world, raw_valkey):
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    seed(
        raw_valkey,
        world.acme_concierge.collection_name,
        [{"text": f"m{i}", "user_id": "alice", "run_id": f"run-{i % 3}"} for i in range(9)],
    )
    seed(raw_valkey, world.acme_sports.collection_name, [{"text": "s", "user_id": "bob", "run_id": "run-0"}])

    run = selectors.memory_entity(scope=scope, field="run_id", value="run-0")
    in_app = selectors.memory_entity(
        scope=scope, field="run_id", value="run-0", filters=filter_from_fields(app_id="sports_portal")
    )

    assert (run.count, run.people, in_app.count, in_app.people) == (4, 2, 1, 1)
    with pytest.raises(ValidationError):
        selectors.memory_entities(scope=scope, field="user_id")
    with pytest.raises(ValidationError):
        selectors.memory_entities(scope=scope, field="run_id", page_size=0)
    with pytest.raises(ValidationError):
        selectors.memory_entities(scope=scope, field="run_id", after="bad\u202eid")
