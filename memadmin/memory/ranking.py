"""How a search ranks one app's memories: Mem0's vector similarity (1 - cosine distance), and for a hybrid
search the words of the query found in the memory's text (the index's TEXT field ``memory``, BM25) on top.

The two are fused by a weighted sum, not by reciprocal rank fusion: the fused score stays a similarity
from 0 to 1, so it compares across apps (each app is its own index, with its own BM25 statistics) and one
cut-off (the dashboard's close matches, the API's threshold) means the same for both kinds of search.
On the labelled queries (tests/fixtures/search_queries.json) rank fusion ranked worse than the vector
alone (nDCG@10 0.949 against 0.967 at its best k); this sum ranked best of the variants tried.
"""

from __future__ import annotations

import logging
import re

import numpy as np
from valkey import exceptions as vexc

from memadmin.memory import index_queries
from memadmin.memory.keyset import records_from
from memadmin.memory.records import MemoryRecord
from memadmin.memory.scope import AppRef

logger = logging.getLogger("memadmin.memory")

# Tuned on the labelled queries (bench/relevance.py prints the figures): the keyword part adds at
# most KEYWORD_WEIGHT to the similarity, BM25 saturating at BM25_HALF (half the bonus). Larger weights
# (0.1, 0.2) let a shared common word ("prefer", "hotel") lift unrelated memories over related ones and
# lowered nDCG@10; 0.04-0.06 with a half point of 2-4 was the plateau at the top.
KEYWORD_WEIGHT = 0.05
BM25_HALF = 2.0
KEYWORD_CANDIDATES = 100
MAX_TERMS = 20
# Words that carry no meaning of their own: matching them ("I", "my", "how") would lift every memory a
# person wrote in the first person. The search module drops its own, shorter list too.
STOPWORDS = frozenset(
    "a about all also am an and any are as at be been being but by can could did do does doing done for from "
    "had has have having he her hers him his how i if in into is it its just may me might much must my no not "
    "of on only or other our out over own per same shall she should so some such than that the their them "
    "then there these they this to too up very was we were what when where which who whom whose why will "
    "with would you your".split()
)
_WORD = re.compile(r"\w+")


def keyword_terms(query: str) -> list[str]:
    """The query's words worth matching, lower-cased, each once, in order. Only letters, digits and "_"
    survive, so nothing in a query can reach the search syntax (no operators, no field names, no *)."""
    terms = []
    for word in _WORD.findall(query.lower()):
        if word.strip("_") and word not in STOPWORDS and word not in terms:  # "_" alone is no word
            terms.append(word)
    return terms[:MAX_TERMS]


def keyword_score(bm25: float) -> float:
    """BM25 (unbounded, larger in larger collections) as 0..1, saturating: a second matching word still counts."""
    return bm25 / (bm25 + BM25_HALF) if bm25 > 0 else 0.0


def fuse(similarity: float, bm25: float) -> float:
    return min(1.0, similarity + KEYWORD_WEIGHT * keyword_score(bm25))


def _cosine(vector: np.ndarray, blob: bytes | None) -> float:
    if not blob:
        return 0.0
    other = np.frombuffer(blob, dtype=np.float32)
    if other.shape != vector.shape:
        return 0.0
    norm = float(np.linalg.norm(vector) * np.linalg.norm(other))
    return max(0.0, float(np.dot(vector, other)) / norm) if norm else 0.0


def _set_similarity(record: MemoryRecord, fields: dict) -> None:
    distance = fields.get(b"vector_score")
    record.score = max(0.0, 1.0 - float(distance)) if distance is not None else 0.0


def app_matches(
    app: AppRef, query: str, vector: np.ndarray, terms: list[str], *, candidates: int, limit: int
) -> list[MemoryRecord]:
    """The best ``limit`` memories of one app among the filter ``query``'s matches, scored.

    Without terms, the nearest neighbours. With terms, those plus every memory the words match, fused: a
    memory with no matching word keeps its similarity, so none outside the nearest ``limit`` can climb over
    them without a word of the query, and the keyword matches' similarity is computed from their vectors."""
    documents = index_queries.knn(app.place, query, vector.tobytes(), candidates=candidates, limit=limit)
    found = {record.id: record for record in records_from(app, documents, _set_similarity)}
    if not terms:
        return list(found.values())
    try:
        matches = index_queries.keyword(app.place, query, terms, limit=max(limit, KEYWORD_CANDIDATES))
    except vexc.ResponseError as exc:
        # A search module without full-text queries (valkey-search before full-text support): the vector
        # ranking still answers, and the log says why the words did not count.
        logger.warning("Keyword search unavailable on %s, ranking by similarity only: %s", app.collection, exc)
        return list(found.values())
    for key, fields, bm25 in matches:
        [record] = records_from(app, [(key, fields)])
        similarity = found[record.id].score if record.id in found else _cosine(vector, fields.get(b"embedding"))
        record.score = fuse(similarity, bm25)
        found[record.id] = record
    return list(found.values())
