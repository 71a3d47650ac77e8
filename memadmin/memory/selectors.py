"""Scoped reads. Every function takes the Scope first and starts every query from it."""

from __future__ import annotations

import hashlib
import heapq
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import numpy as np

from memadmin.memory import index, store
from memadmin.memory.audit import audit_record
from memadmin.memory.errors import NotFound, ValidationError
from memadmin.memory.filters import EVERYTHING, Node, Nothing, for_app, pinned_value, render
from memadmin.memory.history import history_for
from memadmin.memory.ids import clean_id
from memadmin.memory.records import Counts, MemoryRecord, Page
from memadmin.memory.scope import AppRef, Scope

logger = logging.getLogger("memadmin.memory")

MAX_PAGE_SIZE = 200
MAX_WINDOW = 10_000  # the search module's default MAXSEARCHRESULTS
MAX_TOP_K = 100
KNN_CANDIDATES = 100


def plan(scope: Scope, filters: Node) -> list[tuple[AppRef, Node]]:
    """(app, that app's tree) for every app of the scope the filters can match, by app_id."""
    tree = scope.narrowed(filters)
    planned = []
    for app in sorted(scope.apps, key=lambda a: a.app_id):
        app_tree = for_app(tree, app.app_id)
        if not isinstance(app_tree, Nothing):
            planned.append((app, app_tree))
    return planned


def _in_scope(scope: Scope, record: MemoryRecord) -> bool:
    # Belt and braces: the query already pinned the scope, so a miss here is a bug worth a log line.
    if scope.constraint().matches(record.scope_fields()):
        return True
    logger.error("Dropped memory %s outside scope %s/%s", record.id, scope.tenant_slug, scope.user_id)
    return False


def records_from(app: AppRef, documents: list[tuple[str, dict]], extra: Callable | None = None) -> list[MemoryRecord]:
    records = []
    for key, fields in documents:
        record = MemoryRecord.from_hash(app.app_id, key, fields)
        if extra:
            extra(record, fields)
        records.append(record)
    return records


def app_count(*, app: AppRef, tree: Node) -> int:
    """Matches of an already planned (scope-narrowed) tree in one app."""
    return index.count(app.collection, render(tree))


def _audit_read(scope: Scope, action: str, filters: Node, records: list[MemoryRecord], **details) -> None:
    if scope.actor_kind == "enduser":
        return  # a person reading their own data is not an access to audit
    user_id = pinned_value(scope.narrowed(filters), "user_id")
    if user_id is None:
        # Opening one memory (or reading several of the same person) is a read of that person's data:
        # the user_id column is what the audit filter and the end user's transparency list key on.
        users = {r.user_id for r in records}
        user_id = users.pop() if len(users) == 1 else None
    apps = sorted({r.app_id for r in records})
    audit_record(
        scope=scope,
        action=action,
        app_id=apps[0] if len(apps) == 1 else "",
        user_id=user_id,
        memory_ids=[r.id for r in records],
        details=details,
    )


def _sort_key(record: MemoryRecord):
    created = record.created_at.timestamp() if record.created_at else float("-inf")
    return (-created, record.app_id, record.id)


def memory_count(*, scope: Scope, filters: Node = EVERYTHING) -> int:
    scope.require("read")
    return sum(app_count(app=app, tree=tree) for app, tree in plan(scope, filters))


def memory_list(
    *, scope: Scope, filters: Node = EVERYTHING, page: int = 1, page_size: int = 50, audit: bool = True
) -> Page:
    """Newest first, exact total; several apps are merged by created_at."""
    scope.require("read")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}.", field="page_size")
    if page < 1:
        raise ValidationError("page must be 1 or more.", field="page")
    offset = (page - 1) * page_size
    if offset + page_size > MAX_WINDOW:
        raise ValidationError(
            f"Only the newest {MAX_WINDOW} matches can be paged through; narrow the filters or export.",
            field="page",
        )
    planned = plan(scope, filters)
    total, items = 0, []
    single = len(planned) == 1
    for app, tree in planned:
        # One app pages in the engine; several fetch the first offset+size of each and merge.
        start, size = (offset, page_size) if single else (0, offset + page_size)
        found, documents = index.search(app.collection, render(tree), offset=start, limit=size, sort_by="created_at")
        total += found
        items.extend(records_from(app, documents))
    if not single:
        items = sorted(items, key=_sort_key)[offset : offset + page_size]
    items = [r for r in items if _in_scope(scope, r)]
    if audit:
        _audit_read(scope, "memory.list", filters, items, page=page)
    return Page(items=items, total=total, page=page, page_size=page_size)


def memory_search(
    *,
    scope: Scope,
    query: str,
    filters: Node = EVERYTHING,
    top_k: int = 10,
    threshold: float = 0.0,
    audit: bool = True,
) -> list[MemoryRecord]:
    """Semantic search: Mem0's embedder and Mem0's scoring (1 - cosine distance), our escaped filters."""
    scope.require("read")
    query = (query or "").strip()
    if not query:
        raise ValidationError("A search needs a query.", field="query")
    if len(query) > 2000:
        raise ValidationError("The query is longer than 2000 characters.", field="query")
    if not 1 <= top_k <= MAX_TOP_K:
        raise ValidationError(f"top_k must be between 1 and {MAX_TOP_K}.", field="top_k")
    if not 0.0 <= threshold <= 1.0:
        raise ValidationError("threshold must be between 0 and 1.", field="threshold")
    planned = plan(scope, filters)
    if not planned:
        return []
    vector = np.asarray(index.embed(planned[0][0].collection, query), dtype=np.float32).tobytes()
    found: list[MemoryRecord] = []
    # HNSW explores max(EF_RUNTIME, K) nodes, and Mem0's indexes say EF_RUNTIME 10: asking for only
    # top_k neighbours missed the obvious best match among 21 memories. The page stays top_k.
    candidates = max(top_k, KNN_CANDIDATES)

    def set_score(record, fields):
        distance = fields.get(b"vector_score")
        record.score = max(0.0, 1.0 - float(distance)) if distance is not None else 0.0

    for app, tree in planned:
        documents = index.knn(app.collection, render(tree), vector, candidates=candidates, limit=top_k)
        found.extend(records_from(app, documents, set_score))
    results = heapq.nlargest(top_k, (r for r in found if r.score >= threshold), key=lambda r: r.score)
    results = [r for r in results if _in_scope(scope, r)]
    if audit:
        _audit_read(scope, "memory.search", filters, results, query_length=len(query))
    return results


def memory_find(*, scope: Scope, memory_id: str, app_id: str | None = None) -> MemoryRecord:
    """One memory by id (one HMGET per app of the scope), unaudited: for services that act on it."""
    memory_id = clean_id(memory_id, "memory_id")
    apps = [a for a in scope.apps if app_id is None or a.app_id == app_id]
    if not apps:
        raise NotFound()
    client = store.client()
    with store.store_errors():
        pipe = client.pipeline(transaction=False)
        for app in apps:
            pipe.hmget(f"{store.key_prefix(app.collection)}{memory_id}", *index.RETURN_FIELDS)
        rows = pipe.execute()
    for app, values in zip(apps, rows):
        if values[1] is None and values[0] is None:  # neither memory nor memory_id field: no such hash
            continue
        fields = {name.encode(): value for name, value in zip(index.RETURN_FIELDS, values) if value is not None}
        record = MemoryRecord.from_hash(app.app_id, f"{store.key_prefix(app.collection)}{memory_id}", fields)
        if scope.constraint().matches(record.scope_fields()):
            return record
    raise NotFound()


def memory_get(*, scope: Scope, memory_id: str, app_id: str | None = None, audit: bool = True) -> MemoryRecord:
    """One memory; outside the scope it is NotFound, exactly like a missing id."""
    scope.require("read")
    record = memory_find(scope=scope, memory_id=memory_id, app_id=app_id)
    if audit:
        _audit_read(scope, "memory.get", EVERYTHING, [record], user=record.user_id)
    return record


def memory_history(*, scope: Scope, memory_id: str, app_id: str | None = None) -> list[dict]:
    scope.require("read")
    record = memory_find(scope=scope, memory_id=memory_id, app_id=app_id)
    app = scope.app(record.app_id)
    return history_for(app.collection, [record.id])[record.id]


def _aggregate_batches(app: AppRef, tree: Node, batch_size: int) -> Iterator[list[MemoryRecord]]:
    for documents in index.batches(app.collection, render(tree), batch_size=batch_size):
        yield records_from(app, documents)


def memory_export(
    *, scope: Scope, filters: Node = EVERYTHING, batch_size: int = 500, with_history: bool = True,
    audit: bool = True,
) -> Iterator[dict]:
    """Plain dicts, one per memory, produced batch by batch whatever the number of matches."""
    scope.require("export")
    if scope.user_id is None and pinned_value(filters, "user_id") is None:
        scope.require("export_app")
    planned = plan(scope, filters)
    exported = 0
    try:
        for app, tree in planned:
            for batch in _aggregate_batches(app, tree, batch_size):
                batch = [r for r in batch if _in_scope(scope, r)]
                history = history_for(app.collection, [r.id for r in batch]) if with_history else {}
                for record in batch:
                    item = record.as_dict()
                    if with_history:
                        item["history"] = history.get(record.id, [])
                    exported += 1
                    yield item
    finally:
        if audit:
            audit_record(
                scope=scope,
                action="memory.export",
                user_id=pinned_value(scope.narrowed(filters), "user_id"),
                app_id=planned[0][0].app_id if len(planned) == 1 else "",
                count=exported,
            )


def _group_counts(app: AppRef, tree: Node, field: str, limit: int | None = None) -> Counter:
    return index.group_counts(app.collection, render(tree), field, limit=limit)


def memory_group_counts(
    *, scope: Scope, field: str, filters: Node = EVERYTHING, limit: int | None = None
) -> list[tuple[str, int]]:
    """Memories per user_id, agent_id or run_id across the scope's apps, largest first."""
    scope.require("read")
    if field not in ("user_id", "agent_id", "run_id"):
        raise ValidationError("Counts group by user_id, agent_id or run_id.", field="field")
    counts: Counter = Counter()
    for app, tree in plan(scope, filters):
        counts.update(_group_counts(app, tree, field, limit=limit))
    return counts.most_common(limit)


def memory_counts(*, scope: Scope, filters: Node = EVERYTHING, top: int = 10, max_age: int = 0) -> Counts:
    """Memories per app, per agent and per user, counted by the engine (FT.AGGREGATE).

    Per-app figures are exact. The top-users list keeps each app's 3*top largest
    groups, so a user ranked low in every app may be missing from the merged list.
    ``users`` counts distinct users per app, summed. Whole-tenant counts cost O(N)
    in the engine (seconds at 1M memories): pages that show them on every view pass
    ``max_age`` to reuse an answer that many seconds old.
    """
    scope.require("read")
    key = None
    if max_age:
        from django.core.cache import cache

        apps = ",".join(f"{a.app_id}/{a.collection}" for a in scope.apps)
        raw = f"{scope.tenant_id}|{apps}|{scope.user_id}|{filters!r}|{top}"
        key = "memadmin:counts:" + hashlib.sha1(raw.encode()).hexdigest()
        cached = cache.get(key)
        if cached is not None:
            return cached
    per_app: dict[str, int] = {}
    agents: Counter = Counter()
    users: Counter = Counter()
    distinct_users = 0
    for app, tree in plan(scope, filters):
        per_app[app.app_id] = app_count(app=app, tree=tree)
        if not per_app[app.app_id]:
            continue
        agents.update(_group_counts(app, tree, "agent_id"))
        users.update(_group_counts(app, tree, "user_id", limit=3 * top))
        distinct_users += index.distinct(app.collection, render(tree), "user_id")
    counts = Counts(
        total=sum(per_app.values()),
        per_app=per_app,
        per_agent=agents.most_common(top),
        per_user=users.most_common(top),
        users=distinct_users,
        agents=len(agents),
        counted_at=datetime.now(UTC),
    )
    if key:
        cache.set(key, counts, max_age)
    return counts
