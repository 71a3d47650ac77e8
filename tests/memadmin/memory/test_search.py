"""Semantic search finds the best match, whatever the index's approximate-search shortcuts."""

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields


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
