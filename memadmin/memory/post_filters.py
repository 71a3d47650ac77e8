"""Text and metadata conditions, applied in Python to the scope's own candidates.

The index cannot answer them: Mem0's schema stores metadata as one TAG holding JSON, and its TEXT field matches
stemmed words, never a substring. So the index answers what it can of the tree (``index_part``: the scope, the
ids, the times, a superset of the matches), and each candidate is then checked against the whole tree. The
candidates are bounded: at most MAX_CANDIDATES of the scope's matches are read for a listing (more is a 400 that
says to narrow the filters), and search post-filters its nearest SEARCH_CANDIDATES neighbours. Nothing here
reads beyond the memories the scope and the index-answerable filters select.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from memadmin.memory import index, index_queries
from memadmin.memory.errors import ValidationError
from memadmin.memory.filters import Node, index_part, needs_post_filter, render
from memadmin.memory.keyset import records_from
from memadmin.memory.records import MemoryRecord, Page
from memadmin.memory.scope import AppRef

MAX_CANDIDATES = 10_000
SEARCH_CANDIDATES = 1000
_OLDEST = datetime.min.replace(tzinfo=UTC)


def filter_record(record: MemoryRecord) -> dict:
    """What Node.matches reads of a memory, text and metadata included."""
    return {**record.scope_fields(), "memory": record.memory, "metadata": record.metadata}


def kept(tree: Node, records: list[MemoryRecord]) -> list[MemoryRecord]:
    if not needs_post_filter(tree):
        return records
    return [r for r in records if tree.matches(filter_record(r))]


def knn_plan(tree: Node, *, top_k: int, candidates: int) -> tuple[str, int, int]:
    """(query, KNN candidates, rows returned) of one app's search: with a post-filter, the nearest
    SEARCH_CANDIDATES come back so that top_k can still be found among those that pass it."""
    if not needs_post_filter(tree):
        return render(tree), candidates, top_k
    wide = max(candidates, SEARCH_CANDIDATES)
    return render(index_part(tree)), wide, wide


def page_of(planned: list[tuple[AppRef, Node]], *, page: int, page_size: int, clamp: bool) -> Page:
    """Newest first, exact total: every candidate of the planned apps read (bounded), checked, then paged."""
    matched: list[MemoryRecord] = []
    read = 0
    for app, tree in planned:
        for documents in index_queries.batches(app.place, render(index_part(tree)), fields=index.RETURN_FIELDS):
            read += len(documents)
            if read > MAX_CANDIDATES:
                raise ValidationError(
                    f"Filters on the memory text or metadata read at most {MAX_CANDIDATES:,} memories, and these "
                    "filters select more: narrow them by user_id, agent_id, run_id or created_at.",
                    field="filters",
                )
            matched.extend(kept(tree, records_from(app, documents)))
    matched.sort(key=lambda r: (r.created_at or _OLDEST, r.id), reverse=True)
    if clamp and page > 1 and (page - 1) * page_size >= len(matched):
        page = max(1, math.ceil(len(matched) / page_size))
    items = matched[(page - 1) * page_size : page * page_size]
    return Page(items=items, total=len(matched), page=page, page_size=page_size)
