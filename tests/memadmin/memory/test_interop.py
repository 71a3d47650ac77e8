"""The cross-cutting Mem0 interop suite (not one module's tests): memories a tenant's agents write with Mem0 OSS
itself are first-class citizens of the service (listed, searched, exported, deleted through the selectors and
services), what the service writes Mem0 reads back, and search ranks as Mem0's does. The last section is
memadmin/memory/index.py's index.ensure adopting a collection Mem0 created itself."""

import numpy as np
import pytest

from memadmin.memory import index, selectors, services
from memadmin.memory.errors import NotFound
from memadmin.memory.filters import filter_from_fields
from tests.factories import AppFactory
from tests.memadmin.memory.rawhash import keys_of, unit_vector


@pytest.fixture
def agent_wrote(world, mem0_agents):
    """acme's concierge agent writes through Mem0 into the collection the service created."""
    agent = mem0_agents(world.acme_concierge.collection_name)
    written = {}
    for label, text, user_id, agent_id, metadata in [
        ("seat", "I prefer window seats", "alice", "booker", {"source": "chat", "priority": 2}),
        ("food", "I am allergic to peanuts", "alice", None, None),
        ("bob", "Book me a hotel near the station", "bob", "booker", None),
    ]:
        kwargs = {"user_id": user_id, "infer": False}
        if agent_id:
            kwargs["agent_id"] = agent_id
        if metadata:
            kwargs["metadata"] = metadata
        result = agent.add([{"role": "user", "content": text}], **kwargs)
        written[label] = result["results"][0]["id"]
    return written


def test_agent_memories_are_visible_searchable_and_exportable(world, agent_wrote):
    scope = world.admin(world.acme)
    page = selectors.memory_list(scope=scope, filters=filter_from_fields(user_id="alice"))
    assert {r.id for r in page.items} == {agent_wrote["seat"], agent_wrote["food"]}
    seat = selectors.memory_get(scope=scope, memory_id=agent_wrote["seat"])
    assert (seat.app_id, seat.user_id, seat.agent_id, seat.memory) == (
        "concierge_app",
        "alice",
        "booker",
        "I prefer window seats",
    )
    # What Mem0 OSS stored is what the service reads: its role included (memadmin drops it only from its own adds).
    assert seat.metadata == {"source": "chat", "priority": 2, "role": "user"}
    assert seat.created_at is not None

    found = selectors.memory_search(
        scope=scope, query="which seat do I like", filters=filter_from_fields(user_id="alice")
    )
    assert found[0].id == agent_wrote["seat"]
    assert 0 < found[0].score <= 1

    exported = {item["id"]: item for item in selectors.memory_export(scope=scope)}
    assert set(exported) == set(agent_wrote.values())
    assert exported[agent_wrote["bob"]]["agent_id"] == "booker"
    assert exported[agent_wrote["bob"]]["app_id"] == "concierge_app"

    counts = selectors.memory_counts(scope=scope)
    assert counts.per_app == {"concierge_app": 3, "sports_portal": 0}
    assert dict(counts.per_user) == {"alice": 2, "bob": 1}


def test_agent_memories_are_invisible_to_other_apps_and_tenants(world, agent_wrote):
    globex = world.admin(world.globex)  # also has a concierge_app
    assert selectors.memory_list(scope=globex).total == 0
    assert selectors.memory_search(scope=globex, query="window seats") == []
    assert list(selectors.memory_export(scope=globex)) == []
    for memory_id in agent_wrote.values():
        with pytest.raises(NotFound):
            selectors.memory_get(scope=globex, memory_id=memory_id)
        with pytest.raises(NotFound):
            services.memory_delete(scope=globex, memory_id=memory_id)
    acme = world.admin(world.acme)
    assert selectors.memory_list(scope=acme, filters=filter_from_fields(app_id="sports_portal")).total == 0
    sports_key = world.api_key(world.acme, world.acme_sports)
    assert selectors.memory_list(scope=sports_key).total == 0


def test_agent_memories_are_deletable(world, agent_wrote, raw_valkey, mem0_agents):
    scope = world.admin(world.acme)
    collection = world.acme_concierge.collection_name
    assert services.memory_delete(scope=scope, memory_id=agent_wrote["food"]).deleted == 1
    result = services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="alice"))
    assert (result.deleted, result.remaining) == (1, 0)
    assert [k.decode() for k in keys_of(raw_valkey, collection)] == [f"mem0:{collection}:{agent_wrote['bob']}"]
    # Mem0 itself agrees that they are gone.
    agent = mem0_agents(collection)
    with pytest.raises(KeyError):  # Mem0's ValkeyDB.get raises for a missing id
        agent.get(agent_wrote["seat"])
    assert agent.search("seats", filters={"user_id": "alice"})["results"] == []


def test_service_writes_are_readable_by_mem0(world, add, mem0_agents):
    scope = world.admin(world.acme)
    record = add(
        scope,
        "concierge_app",
        "alice",
        "Alice prefers aisle seats",
        agent_id="booker",
        metadata={"source": "dashboard"},
    )
    agent = mem0_agents(world.acme_concierge.collection_name)
    got = agent.get(record.id)
    assert got["memory"] == "Alice prefers aisle seats"
    assert got["user_id"] == "alice" and got["agent_id"] == "booker"
    assert got["metadata"] == {"source": "dashboard"}  # no "role": the caller never sent one
    hits = agent.search("aisle seats", filters={"user_id": "alice"})["results"]
    assert [h["id"] for h in hits] == [record.id]
    assert hits[0]["metadata"] == {"source": "dashboard"}
    # The add's answer is the stored memory: whole-second created_at, updated_at written with it, Mem0's hash.
    read = selectors.memory_get(scope=scope, memory_id=record.id)
    assert (record.created_at, record.updated_at, record.hash) == (read.created_at, read.updated_at, read.hash)
    assert read.updated_at == read.created_at and read.created_at.microsecond == 0
    assert got["updated_at"] == got["created_at"]  # Mem0 reads the updated_at the service wrote


def test_search_matches_mem0_search_for_a_user_filter(world, mem0_agents):
    agent = mem0_agents(world.acme_concierge.collection_name)
    texts = [
        "I prefer window seats",
        "I am allergic to peanuts",
        "My daughter plays the violin",
        "I travel to Berlin every month",
        "I like my coffee black",
        "I am learning to surf",
    ]
    for text in texts:
        agent.add([{"role": "user", "content": text}], user_id="alice", infer=False)
    agent.add([{"role": "user", "content": "I prefer aisle seats"}], user_id="bob", infer=False)
    scope = world.admin(world.acme)
    for query in ("what seat does she like", "coffee", "music lessons for kids"):
        theirs = agent.search(query, filters={"user_id": "alice"}, top_k=4, threshold=0.1)["results"]
        ours = selectors.memory_search(
            scope=scope, query=query, filters=filter_from_fields(user_id="alice"), top_k=4, threshold=0.1
        )
        assert [r.id for r in ours] == [h["id"] for h in theirs], query
        assert [r.score for r in ours] == pytest.approx([h["score"] for h in theirs], abs=1e-4)


# --- a collection Mem0 created itself, before memadmin knew it -------------------------------


def mem0_valkeydb(collection, client):
    """Mem0's ValkeyDB without its constructor (whose index check fails on this server), on our client."""
    from mem0.vector_stores.valkey import ValkeyDB

    db = ValkeyDB.__new__(ValkeyDB)
    db.collection_name, db.prefix, db.embedding_model_dims = collection, f"mem0:{collection}", 384
    db.index_type, db.hnsw_m, db.hnsw_ef_construction, db.hnsw_ef_runtime = "hnsw", 16, 200, 10
    db.timezone, db.cluster_mode, db.client = "UTC", False, client
    return db


@pytest.fixture
def legacy(world, raw_valkey):
    """Collection "legacy" made by Mem0's own FT.CREATE (case-insensitive, comma-split TAGs, prefix without ':')."""
    db = mem0_valkeydb("legacy", raw_valkey)
    raw_valkey.execute_command(*db._build_index_schema("legacy", 384, "COSINE", "mem0:legacy"))
    users = ["Alice", "alice", "a,b", "a", "b"]
    ids = [f"{i}-legacy" for i in range(len(users))]
    db.insert(
        vectors=[np.frombuffer(unit_vector(), dtype=np.float32).tolist() for _ in users],
        payloads=[{"data": f"memory of {u}", "user_id": u, "hash": f"h{i}"} for i, u in enumerate(users)],
        ids=ids,
    )
    # A sibling collection whose keys Mem0's colon-less prefix also covers.
    raw_valkey.hset(
        "mem0:legacy2:x",
        mapping={
            "memory_id": "x",
            "memory": "sibling",
            "user_id": "alice",
            "created_at": 1,
            "embedding": unit_vector(),
        },
    )
    app = AppFactory(tenant=world.acme, app_id="legacy_app", collection_name="legacy")
    return app, dict(zip(users, ids))


def test_mem0_created_index_is_case_insensitive_and_splits_on_commas(legacy, raw_valkey):
    # Why the service re-indexes: on Mem0's own index, ids are neither exact nor unsplittable.
    def count(query):
        return raw_valkey.execute_command("FT.SEARCH", "legacy", query, "LIMIT", "0", "0", "DIALECT", "2")[0]

    assert count("@user_id:{alice}") == 3  # Alice, alice and the sibling collection's alice
    assert count("@user_id:{a}") == 2  # a, and a,b split in two


def test_mem0_created_index_is_reindexed_and_ids_become_exact(world, legacy, raw_valkey):
    app, ids = legacy
    index.ensure(app.app_ref().place)
    info = index.info(app.app_ref().place)
    assert index.is_ours(info, "legacy")
    scope = world.admin(world.acme)

    def listed(user_id):
        filters = filter_from_fields(user_id=user_id, app_id="legacy_app")
        return [r.id for r in selectors.memory_list(scope=scope, filters=filters).items]

    assert listed("Alice") == [ids["Alice"]]
    assert listed("alice") == [ids["alice"]]
    assert listed("a,b") == [ids["a,b"]]
    assert listed("a") == [ids["a"]]
    assert listed("b") == [ids["b"]]
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(app_id="legacy_app")) == 5
    # Every memory survived the re-index; the sibling collection is no longer part of this one.
    assert len(keys_of(raw_valkey, "legacy")) == 5
    assert raw_valkey.exists("mem0:legacy2:x")
    result = services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="a", app_id="legacy_app"))
    assert (result.deleted, result.remaining) == (1, 0)
    assert len(keys_of(raw_valkey, "legacy")) == 4
    assert raw_valkey.exists("mem0:legacy2:x")


def test_service_reindexes_on_first_use(world, legacy):
    app, ids = legacy
    scope = world.admin(world.acme)
    end_user = world.end_user(world.acme, "Alice")
    assert [r.id for r in selectors.memory_list(scope=end_user).items] == [ids["Alice"]]
    assert index.is_ours(index.info(app.app_ref().place), "legacy")
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="a")) == 1
