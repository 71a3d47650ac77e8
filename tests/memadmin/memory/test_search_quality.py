"""Search quality on the labelled queries (tests/fixtures/search_queries.json) over the demo's facts, stored
through the service (real Mem0, real embeddings, real Valkey): hybrid search finds at least what the vector
alone finds, and the dashboard's default cut-off is the one the set supports (bench/relevance.py)."""

import pytest
from django.conf import settings

from bench import relevance
from memadmin.memory.filters import filter_from_fields
from tenants.management.commands.seed_demo import FACTS


def test_the_labelled_set_judges_the_demo_facts():
    queries = relevance.labelled_queries()
    assert len(queries) >= 40
    assert len({q["query"] for q in queries}) == len(queries)
    for query in queries:
        assert query["kind"] in relevance.KINDS, query
        # Exact demo texts: a fact reworded in the seed would silently drop out of every judgement.
        assert query["relevant"] and set(query["relevant"]) <= set(FACTS), query["query"]
        assert set(query["relevant"].values()) <= {1, 2}, query["query"]


def test_the_metrics_score_a_ranking():
    relevant = {"a": 2, "b": 1}
    assert relevance.recall_at(["x", "a", "y", "z", "w", "b"], relevant, 5) == 0.5
    assert relevance.ndcg_at(["a", "b", "x"], relevant, 10) == 1.0
    assert 0 < relevance.ndcg_at(["b", "a"], relevant, 10) < 1.0
    assert relevance.ndcg_at(["x", "y"], relevant, 10) == 0.0


@pytest.fixture
def demo(world):
    scope = world.admin(world.acme)
    relevance.seed(scope=scope, app_id="concierge_app")
    return scope


def test_hybrid_ranks_at_least_as_well_as_the_vector_and_the_cutoff_is_the_supported_one(demo):
    result = relevance.evaluate(scope=demo, filters=filter_from_fields(user_id=relevance.PROBE_USER))
    vector, hybrid = result["vector"]["all"], result["hybrid"]["all"]
    assert result["queries"] == vector["queries"] == len(relevance.labelled_queries())
    assert hybrid["recall_at_5"] >= vector["recall_at_5"], result
    assert hybrid["ndcg_at_10"] >= vector["ndcg_at_10"], result
    # Change the set, the embedder or the fusion, and this says which default the set now supports.
    assert settings.MEMADMIN_SEARCH_MIN_SCORE == result["supported_cutoff"], result
    assert result["at_configured_cutoff"]["hybrid"]["relevant_close"] > 0
