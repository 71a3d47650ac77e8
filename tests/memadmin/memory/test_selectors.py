"""memadmin/memory/selectors.py: paging through thousands of memories (no duplicates, no gaps, exact count,
newest first), exports and counts, and semantic search that finds the best match whatever the index's
approximate-search shortcuts."""

import time

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tests.memadmin.memory.rawhash import mem0_hash, put_many

N = 2500
PAGE = 200

# --- paging, export and counts ----------------------------------------------------------------------


def rows(user_id, n, *, base, agent="booker"):
    # Ten memories share each created_at second: ties are where paging goes wrong.
    return [
        {"text": f"memory {i} of {user_id}", "user_id": user_id, "agent_id": agent, "created_at": base + i // 10}
        for i in range(n)
    ]


def walk(scope, filters, page_size=PAGE):
    seen, page_no, total = [], 1, None
    while True:
        page = selectors.memory_list(scope=scope, filters=filters, page=page_no, page_size=page_size, audit=False)
        total = page.total if total is None else total
        assert page.total == total
        seen.extend(page.items)
        if not page.has_next:
            assert len(page.items) == total - (page_no - 1) * page_size
            return seen, total
        assert len(page.items) == page_size
        page_no += 1


def assert_newest_first(records):
    stamps = [r.created_at for r in records]
    assert stamps == sorted(stamps, reverse=True)


def test_paging_one_user_of_one_app(world, raw_valkey):
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)  # creates the indexes
    base = int(time.time()) - 10_000
    ids = put_many(raw_valkey, world.acme_concierge.collection_name, rows("alice", N, base=base))
    put_many(raw_valkey, world.acme_concierge.collection_name, rows("bob", 300, base=base))

    records, total = walk(scope, filter_from_fields(user_id="alice"))

    assert total == N
    assert len(records) == N
    assert len({r.id for r in records}) == N  # no duplicates
    assert {r.id for r in records} == set(ids)  # no gaps
    assert all(r.user_id == "alice" for r in records)
    assert_newest_first(records)


def test_paging_one_user_across_two_apps_merged(world, raw_valkey):
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    base = int(time.time()) - 10_000
    # Interleaved timestamps, with ties inside each app and across the two apps.
    ids = put_many(raw_valkey, world.acme_concierge.collection_name, rows("alice", N // 2, base=base))
    ids += put_many(raw_valkey, world.acme_sports.collection_name, rows("alice", N // 2, base=base, agent="coach"))
    put_many(raw_valkey, world.globex_concierge.collection_name, rows("alice", 100, base=base))

    for page_size in (PAGE, 77):
        records, total = walk(scope, filter_from_fields(user_id="alice"), page_size=page_size)
        assert total == N
        assert len(records) == N
        assert len({r.id for r in records}) == N
        assert {r.id for r in records} == set(ids)
        assert {r.app_id for r in records} == {"concierge_app", "sports_portal"}
        assert_newest_first(records)


def test_export_streams_every_memory_once(world, raw_valkey):
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    base = int(time.time()) - 10_000
    ids = put_many(raw_valkey, world.acme_concierge.collection_name, rows("alice", N, base=base))
    ids += put_many(raw_valkey, world.acme_sports.collection_name, rows("alice", 300, base=base))
    exported = [item["id"] for item in selectors.memory_export(scope=scope, batch_size=333, with_history=False)]
    assert len(exported) == len(ids) == len(set(exported))
    assert set(exported) == set(ids)
    counts = selectors.memory_counts(scope=scope)
    assert counts.total == len(ids)
    assert counts.per_app == {"concierge_app": N, "sports_portal": 300}


# --- search --------------------------------------------------------------------------------------


def test_best_match_is_found_among_many_similar_memories(world, mem0_agents):
    # Twenty near-identical memories and one different one: HNSW with Mem0's EF_RUNTIME 10 and a
    # KNN of only top_k candidates walked past the different one (found by this test).
    agent = mem0_agents(world.acme_concierge.collection_name)
    for i in range(20):
        agent.add([{"role": "user", "content": f"alice likes tea number {i}"}], user_id="alice", infer=False)
    window = agent.add([{"role": "user", "content": "I prefer window seats"}], user_id="bob", infer=False)
    window_id = window["results"][0]["id"]
    scope = world.admin(world.acme)
    for top_k in (1, 3, 10):
        found = selectors.memory_search(scope=scope, query="window", top_k=top_k)
        assert len(found) == top_k
        assert found[0].id == window_id, top_k
        assert found[0].score > 0.4
    filtered = selectors.memory_search(scope=scope, query="window", filters=filter_from_fields(user_id="bob"), top_k=1)
    assert [r.id for r in filtered] == [window_id]


def test_users_are_counted_once_across_apps_and_only_in_the_scope(world, raw_valkey):
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    base = int(time.time()) - 1000
    concierge, sports = world.acme_concierge.collection_name, world.acme_sports.collection_name
    agent_only = {"text": "the booker's own note", "agent_id": "booker", "created_at": base}  # no user_id: no user
    put_many(raw_valkey, concierge, rows("alice", 3, base=base) + rows("bob", 2, base=base) + [agent_only])
    put_many(raw_valkey, sports, rows("alice", 2, base=base) + rows("carol", 1, base=base))
    put_many(raw_valkey, world.globex_concierge.collection_name, rows("dave", 4, base=base))

    counts = selectors.memory_counts(scope=scope)
    assert counts.users == 3  # alice, bob, carol: alice is one person in two apps (the sum per app said 4)
    assert counts.total == 9
    # One app with memories: counted by the engine, same answer.
    only = selectors.memory_counts(scope=scope, filters=filter_from_fields(app_id="concierge_app"))
    assert only.users == 2


def test_a_page_past_the_end_is_the_last_page(world, raw_valkey):
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    put_many(raw_valkey, world.acme_concierge.collection_name, rows("alice", 25, base=int(time.time()) - 1000))
    filters = filter_from_fields(user_id="alice")

    page = selectors.memory_list(scope=scope, filters=filters, page=7, page_size=10, audit=False, clamp=True)
    assert (page.page, page.pages, len(page.items)) == (3, 3, 5)
    assert selectors.memory_list(scope=scope, filters=filters, page=3, page_size=10, audit=False).items == page.items
    # Without clamp (the API: Mem0 clients page until a page is empty) past the end stays empty.
    for n in (4, 7):
        assert selectors.memory_list(scope=scope, filters=filters, page=n, page_size=10, audit=False).items == []


def test_memories_of_one_second_are_newest_first_on_every_page(world, raw_valkey):
    """Mem0 stores created_at in whole seconds; the microseconds memadmin's adds keep order one second's
    memories, memories without them (Mem0 OSS) follow by id, and a page cut inside the second continues it."""
    collection, second = world.acme_concierge.collection_name, int(time.time()) - 100
    newer = put_many(raw_valkey, collection, [{"user_id": "alice", "created_at": second + 1}])
    older = put_many(raw_valkey, collection, [{"user_id": "alice", "created_at": second - 1}])
    timed = put_many(raw_valkey, collection, [{"user_id": "alice", "created_at": second} for _ in range(4)])
    untimed = put_many(raw_valkey, collection, [{"user_id": "alice", "created_at": second} for _ in range(2)])
    # An old writer's hash without its memory_id field: its id is its key's (the page is then read another way).
    _, fields = mem0_hash(user_id="alice", created_at=second)
    untimed.append(fields.pop("memory_id"))
    raw_valkey.hset(f"mem0:{collection}:{untimed[-1]}", mapping=fields)
    for n, memory_id in enumerate(timed):  # written in this order, a few microseconds apart
        raw_valkey.hset(f"mem0:{collection}:{memory_id}", "created_at_us", second * 1_000_000 + 10 + n)
    expected = newer + timed[::-1] + sorted(untimed) + older
    scope = world.admin(world.acme)
    alice = filter_from_fields(user_id="alice")
    assert [r.id for r in selectors.memory_list(scope=scope, filters=alice).items] == expected
    for size in (1, 2, 3):
        walked, cursor = [], None
        while True:
            page = selectors.memory_page_after(scope=scope, filters=alice, cursor=cursor, page_size=size)
            walked += [r.id for r in page.items]
            if not (cursor := page.next_cursor):
                break
        assert walked == expected, size


def test_quick_adds_list_newest_first(world, add):
    scope = world.admin(world.acme)
    added = [add(scope, "concierge_app", "alice", f"note number {n}").id for n in range(4)]
    listed = selectors.memory_list(scope=scope, filters=filter_from_fields(user_id="alice")).items
    assert [r.id for r in listed] == added[::-1]


def test_one_second_of_two_apps_interleaves_newest_first(world, raw_valkey):
    second = int(time.time()) - 100
    written = []  # (app's collection, id), in the order written: alternating apps within one second
    for n in range(6):
        collection = (world.acme_concierge, world.acme_sports)[n % 2].collection_name
        memory_id = put_many(raw_valkey, collection, [{"user_id": "alice", "created_at": second}])[0]
        raw_valkey.hset(f"mem0:{collection}:{memory_id}", "created_at_us", second * 1_000_000 + 10 + n)
        written.append(memory_id)
    expected = written[::-1]
    scope, alice = world.admin(world.acme), filter_from_fields(user_id="alice")
    assert [r.id for r in selectors.memory_list(scope=scope, filters=alice).items] == expected
    walked, cursor = [], None
    while True:
        page = selectors.memory_page_after(scope=scope, filters=alice, cursor=cursor, page_size=2)
        walked += [r.id for r in page.items]
        if not (cursor := page.next_cursor):
            break
    assert walked == expected


def test_a_persons_runs_and_agents_leave_out_memories_without_one(world, raw_valkey):
    """The user page lists runs and agents by value: memories stored with no run (or agent) are no group of
    their own (the engine groups a missing field as null, which once showed as a run called "None")."""
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    base = int(time.time()) - 100
    concierge = world.acme_concierge.collection_name
    put_many(
        raw_valkey,
        concierge,
        [
            {"text": "in a run", "user_id": "alice", "run_id": "trip-1", "created_at": base},
            {"text": "in it too", "user_id": "alice", "run_id": "trip-1", "agent_id": "booker", "created_at": base + 1},
            {"text": "no run, no agent", "user_id": "alice", "created_at": base + 2},
            {"text": "no run, no agent either", "user_id": "alice", "created_at": base + 3},
            {"text": "no run, no agent, three", "user_id": "alice", "created_at": base + 4},
        ],
    )
    alice = filter_from_fields(user_id="alice")
    runs = selectors.memory_groups(scope=scope, field="run_id", filters=alice)
    agents = selectors.memory_groups(scope=scope, field="agent_id", filters=alice)
    assert [(g["id"], g["count"]) for g in runs] == [("trip-1", 2)]
    assert [(g["id"], g["count"]) for g in agents] == [("booker", 1)]
