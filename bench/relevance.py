"""Search relevance on the labelled queries (tests/fixtures/search_queries.json): each query's relevant demo
memories were judged by reading. The demo's facts (seed_demo.FACTS) are stored once each for one person
through the service (real Mem0, real embeddings), then every query is searched through memory_search, vector
only and hybrid, and scored: recall@5 (the share of a query's relevant memories in the first 5) and nDCG@10
(graded: 2 = what was asked, 1 = related). Also derived here: the dashboard's cut-off the set supports.

python -m bench runs it as the section "relevance"; tests/memadmin/memory/test_search_quality.py holds hybrid
to at least vector's recall and the cut-off to what the set supports.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from pathlib import Path

QUERIES_FILE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "search_queries.json"
PROBE_USER = "relevance-probe"
KINDS = ("meaning", "words")


def labelled_queries() -> list[dict]:
    return json.loads(QUERIES_FILE.read_text())["queries"]


def recall_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    return len([text for text in ranked[:k] if text in relevant]) / len(relevant)


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    dcg = sum(relevant.get(text, 0) / math.log2(rank + 2) for rank, text in enumerate(ranked[:k]))
    ideal = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(sorted(relevant.values(), reverse=True)[:k]))
    return dcg / ideal


def seed(*, scope, app_id: str, user_id: str = PROBE_USER) -> int:
    """Each demo fact once, as the demo seeds them (memory_add, infer off). Returns how many were stored."""
    from memadmin.memory import services
    from tenants.management.commands.seed_demo import FACTS

    for fact in FACTS:
        services.memory_add(scope=scope, app_id=app_id, messages=fact, user_id=user_id, metadata={"source": "bench"})
    return len(FACTS)


def rankings(*, scope, filters, keyword_search: bool, times: list[float] | None = None) -> list[tuple[dict, list]]:
    """(query, its first 10 results) for every labelled query, unfiltered by any cut-off and unaudited;
    ``times`` collects each search's milliseconds (query embedding included)."""
    from memadmin.memory.selectors import memory_search

    ranked = []
    for query in labelled_queries():
        started = time.perf_counter()
        results = memory_search(
            scope=scope,
            query=query["query"],
            filters=filters,
            top_k=10,
            threshold=0.0,
            keyword_search=keyword_search,
            audit=False,
        )
        if times is not None:
            times.append((time.perf_counter() - started) * 1000)
        ranked.append((query, results))
    return ranked


def figures(ranked: list[tuple[dict, list]]) -> dict:
    """recall@5 and nDCG@10, overall and per kind of query, means over the queries."""
    out = {}
    for kind in ("all", *KINDS):
        rows = [(q, [r.memory for r in results]) for q, results in ranked if kind in ("all", q["kind"])]
        out[kind] = {
            "queries": len(rows),
            "recall_at_5": round(sum(recall_at(texts, q["relevant"], 5) for q, texts in rows) / len(rows), 4),
            "ndcg_at_10": round(sum(ndcg_at(texts, q["relevant"], 10) for q, texts in rows) / len(rows), 4),
        }
    return out


def supported_cutoff(ranked: list[tuple[dict, list]]) -> tuple[float, str]:
    """The highest cut-off (to 0.01) under which every labelled query still shows a relevant memory as a
    close match: the lowest of the queries' best relevant scores, rounded down. And the query that sets it."""
    best = []
    for query, results in ranked:
        scores = [r.score for r in results if r.memory in query["relevant"]]
        best.append((max(scores, default=0.0), query["query"]))
    lowest, query = min(best)
    return math.floor(lowest * 100) / 100, query


def pair_counts(ranked: list[tuple[dict, list]], cutoff: float) -> dict:
    """At this cut-off, over all (query, memory among its first 10) pairs: relevant ones shown as close,
    relevant ones left among the weaker matches, irrelevant ones shown as close (per query)."""
    shown = missed = noise = 0
    for query, results in ranked:
        for r in results:
            relevant = r.memory in query["relevant"]
            shown += relevant and r.score >= cutoff
            missed += relevant and r.score < cutoff
            noise += not relevant and r.score >= cutoff
    return {
        "relevant_close": shown,
        "relevant_weaker": missed,
        "irrelevant_close_per_query": round(noise / len(ranked), 2),
    }


def evaluate(*, scope, filters) -> dict:
    """Both searches over the labelled queries; the memories must already be stored (seed)."""
    from django.conf import settings

    vector_ms, hybrid_ms = [], []
    vector = rankings(scope=scope, filters=filters, keyword_search=False, times=vector_ms)
    hybrid = rankings(scope=scope, filters=filters, keyword_search=True, times=hybrid_ms)
    cutoff, bounded_by = supported_cutoff(hybrid)
    configured = settings.MEMADMIN_SEARCH_MIN_SCORE
    return {
        "queries": len(vector),
        "vector": figures(vector),
        "hybrid": figures(hybrid),
        "supported_cutoff": cutoff,
        "cutoff_set_by_query": bounded_by,
        "configured_cutoff": configured,
        "at_configured_cutoff": {"vector": pair_counts(vector, configured), "hybrid": pair_counts(hybrid, configured)},
        # One pass each, one after the other, on whatever else the machine runs: a rough price, not a benchmark.
        "search_ms_p50": {
            "vector": round(statistics.median(vector_ms), 1),
            "hybrid": round(statistics.median(hybrid_ms), 1),
        },
    }


def measure_relevance(ctx) -> dict:
    """The bench's section: a person of its own in the main app, erased (verified) afterwards."""
    from memadmin.memory import services
    from memadmin.memory.filters import filter_from_fields

    filters = filter_from_fields(user_id=PROBE_USER, app_id=ctx.main_app.app_id)
    services.memory_delete_matching(scope=ctx.scope, filters=filters)  # a previous run cut short
    seed(scope=ctx.scope, app_id=ctx.main_app.app_id)
    try:
        result = evaluate(scope=ctx.scope, filters=filters)
    finally:
        services.memory_delete_matching(scope=ctx.scope, filters=filters)
    v, h = result["vector"]["all"], result["hybrid"]["all"]
    print(
        f"[bench] relevance over {result['queries']} labelled queries: recall@5 vector {v['recall_at_5']:.3f} "
        f"hybrid {h['recall_at_5']:.3f}; nDCG@10 vector {v['ndcg_at_10']:.3f} hybrid {h['ndcg_at_10']:.3f}; "
        f"supported cut-off {result['supported_cutoff']:.2f}; p50 {result['search_ms_p50']['vector']} ms vector, "
        f"{result['search_ms_p50']['hybrid']} ms hybrid",
        file=sys.stderr,
        flush=True,
    )
    return result
