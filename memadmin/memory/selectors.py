"""Scoped reads. Every function takes the Scope first and starts every query from it."""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
from collections import Counter
from collections.abc import Iterator

import numpy as np

from memadmin.memory import capabilities as cap
from memadmin.memory import entity_lists, index, index_queries, post_filters, ranking, store
from memadmin.memory.audit import audit_record
from memadmin.memory.errors import NotFound, ValidationError
from memadmin.memory.filters import EVERYTHING, Node, Nothing, for_app, needs_post_filter, pinned_value, render
from memadmin.memory.history import history_for
from memadmin.memory.ids import clean_id
from memadmin.memory.keyset import advance, created_number, decode_cursor, encode_cursor, keyset_rows, records_from
from memadmin.memory.records import Counts, CursorPage, Entity, EntityPage, MemoryRecord, Page
from memadmin.memory.scope import AppRef, Scope

logger = logging.getLogger("memadmin.memory")

MAX_PAGE_SIZE = 200
MAX_PAGE = 1_000_000
CURSOR_LOOKBACK = 1000  # remembered page boundaries looked up before walking from the first page
CURSOR_TTL = 3600
# Pages one request may walk forward from the nearest remembered boundary: each step is an FT.SEARCH per
# app, so a jump to page 1,000,000 of a cold result would hold a worker for minutes.
MAX_PAGE_WALK = 1000
MAX_TOP_K = 1000  # as the Mem0 Platform allows
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


def app_count(*, app: AppRef, tree: Node) -> int:
    """Matches of an already planned (scope-narrowed) tree in one app."""
    return index_queries.count(app.place, render(tree))


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
    # A page of many people (the memory browser, the overview, a search across users) is one row, naming
    # each person shown and how many of their memories: each of them finds it on their own page.
    shown = None if user_id is not None else Counter(r.user_id for r in records if r.user_id)
    audit_record(
        scope=scope,
        action=action,
        app_id=apps[0] if len(apps) == 1 else "",
        user_id=user_id,
        memory_ids=[r.id for r in records],
        details={k: v for k, v in details.items() if k != "place" or v},
        subjects=shown,
    )


def memory_count(*, scope: Scope, filters: Node = EVERYTHING) -> int:
    scope.require(cap.READ)
    return sum(app_count(app=app, tree=tree) for app, tree in plan(scope, filters))


def memory_page_after(
    *,
    scope: Scope,
    filters: Node = EVERYTHING,
    cursor: str | None = None,
    page_size: int = 50,
    audit: bool = True,
    recount: bool = False,
    place: str = "",
) -> CursorPage:
    """Newest first, any depth: the page after ``cursor`` (None: the first), and the cursor of the next one.
    ``recount`` counts the total again instead of trusting the cursor's (a page re-read after a deletion).
    ``place`` names the page that shows it, for the audit row ("memory browser")."""
    scope.require(cap.READ)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}.", field="page_size")
    planned = plan(scope, filters)
    # The total is counted on the first page and carried by the cursor: a count per page would cost
    # O(matches) each time, which is what paging by position avoids.
    state = decode_cursor(cursor) if cursor else {"p": {}, "n": 0, "t": 0}
    if recount:
        state["t"] = 0
    merged = []
    for rank, (app, tree) in enumerate(planned):
        rows, total = keyset_rows(app, render(tree), state["p"].get(app.app_id), page_size)
        if not cursor or recount:
            state["t"] += total if total is not None else app_count(app=app, tree=tree)
        # One second's memories of several apps interleave by created_at_us, as within one app.
        merged.extend(
            (-created_number(created), -micros, rank, i, app.app_id, created, record)
            for i, (created, micros, record) in enumerate(rows)
        )
    page = heapq.nsmallest(page_size, merged)
    positions = {app.app_id: state["p"].get(app.app_id) for app, _ in planned}
    for app, _ in planned:
        taken = [(created, record) for *_, app_id, created, record in page if app_id == app.app_id]
        positions[app.app_id] = advance(positions.get(app.app_id), taken)
    items = [record for *_, record in page]
    shown = state["n"] + len(items)
    more = len(items) == page_size and (len(merged) > page_size or shown < state["t"])
    next_cursor = encode_cursor({"p": positions, "n": shown, "t": max(state["t"], shown)}) if more else None
    items = [r for r in items if scope.holds(r)]
    if audit:
        _audit_read(scope, "memory.list", filters, items, page_after=bool(cursor), place=place)
    return CursorPage(
        items=items, total=max(state["t"], shown), start=state["n"], page_size=page_size, next_cursor=next_cursor
    )


def memory_list(
    *,
    scope: Scope,
    filters: Node = EVERYTHING,
    page: int = 1,
    page_size: int = 50,
    audit: bool = True,
    recount: bool = False,
    clamp: bool = False,
    place: str = "",
) -> Page:
    """Newest first, exact total, numbered pages to the last one; several apps are merged by created_at.

    Page n starts from the cursor where page n-1 ended, remembered in Valkey (an hour), so reading
    pages in order costs one keyset step each whatever the depth; jumping to an uncached page n walks
    forward from the nearest cached page before it (O(distance) steps of page_size).

    Past the end the page is empty (API clients page until they get nothing); ``clamp`` answers with the last
    page instead (the dashboard: an old link, or a page emptied by deletions, keeps its pager)."""
    scope.require(cap.READ)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}.", field="page_size")
    if not 1 <= page <= MAX_PAGE:
        raise ValidationError(f"page must be between 1 and {MAX_PAGE}.", field="page")
    if needs_post_filter(filters):  # text or metadata conditions: the scope's candidates, checked in Python
        result = post_filters.page_of(plan(scope, filters), page=page, page_size=page_size, clamp=clamp)
        result.items = [r for r in result.items if scope.holds(r)]
        if audit:
            _audit_read(scope, "memory.list", filters, result.items, page=result.page, place=place)
        return result
    apps = ",".join(f"{a.app_id}/{a.collection}" for a in scope.apps)
    raw = f"{scope.tenant_id}|{apps}|{scope.user_id}|{filters!r}|{page_size}"
    # Page boundaries live in Valkey (the default store), shared by every web worker (a per-process cache
    # would make each worker walk from page 1 again).
    prefix = "memadmin:pages:" + hashlib.sha1(raw.encode()).hexdigest() + ":"
    client = store.client()
    start, cursor = 1, None
    if page > 1:
        numbers = list(range(page, max(1, page - CURSOR_LOOKBACK), -1))
        with store.store_errors():
            known = client.mget([f"{prefix}{n}" for n in numbers])
        for n, value in zip(numbers, known):
            if value is not None:
                start, cursor = n, value.decode()
                break
    for n in range(start, page):  # walk forward, remembering every boundary on the way
        if n - start == MAX_PAGE_WALK:  # a result this long: refuse the rest of the jump (a short one ends below)
            raise ValidationError(
                f"page {page} is more than {MAX_PAGE_WALK} pages past the nearest page read in the last hour; "
                "read the pages in order, or jump at most that far ahead at a time.",
                field="page",
            )
        step = memory_page_after(scope=scope, filters=filters, cursor=cursor, page_size=page_size, audit=False)
        cursor = step.next_cursor
        if cursor is None:  # past the last page: empty, like an offset past the end, or the last page
            if not clamp:
                return Page(items=[], total=step.total, page=page, page_size=page_size)
            return _last_page(
                scope=scope,
                filters=filters,
                total=step.total,
                page=page,
                page_size=page_size,
                audit=audit,
                recount=recount,
                place=place,
            )
        with store.store_errors():
            client.set(f"{prefix}{n + 1}", cursor, ex=CURSOR_TTL)
    result = memory_page_after(
        scope=scope, filters=filters, cursor=cursor, page_size=page_size, audit=False, recount=recount
    )
    if result.next_cursor:
        with store.store_errors():
            client.set(f"{prefix}{page + 1}", result.next_cursor, ex=CURSOR_TTL)
    if clamp and not result.items and page > 1:
        return _last_page(
            scope=scope,
            filters=filters,
            total=result.total,
            page=page,
            page_size=page_size,
            audit=audit,
            recount=recount,
            place=place,
        )
    if audit:
        _audit_read(scope, "memory.list", filters, result.items, page=page, place=place)
    return Page(items=result.items, total=result.total, page=page, page_size=page_size)


def _last_page(
    *, scope: Scope, filters: Node, total: int, page: int, page_size: int, audit: bool, recount: bool, place: str = ""
) -> Page:
    """A page past the end clamps to the last page (with its pager), not an empty "no memories yet"."""
    last = max(1, math.ceil(total / page_size))
    return memory_list(
        scope=scope,
        filters=filters,
        page=min(last, page - 1),
        page_size=page_size,
        audit=audit,
        recount=recount,
        clamp=True,
        place=place,
    )


def memory_search(
    *,
    scope: Scope,
    query: str,
    filters: Node = EVERYTHING,
    top_k: int = 10,
    threshold: float = 0.0,
    keyword_search: bool = False,
    audit: bool = True,
    place: str = "",
) -> list[MemoryRecord]:
    """Semantic search: Mem0's embedder and Mem0's scoring (1 - cosine distance), our escaped filters.
    ``keyword_search`` adds the query's words found in the text to that score (hybrid: ranking.py)."""
    scope.require(cap.READ)
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
    vector = np.asarray(index.embed(planned[0][0].place, query), dtype=np.float32)
    terms = ranking.keyword_terms(query) if keyword_search else []
    found: list[MemoryRecord] = []
    # HNSW explores max(EF_RUNTIME, K) nodes, and Mem0's indexes say EF_RUNTIME 10: asking for only
    # top_k neighbours missed the obvious best match among 21 memories. The page stays top_k.
    candidates = max(top_k, KNN_CANDIDATES)
    for app, tree in planned:
        knn_query, wide, limit = post_filters.knn_plan(tree, top_k=top_k, candidates=candidates)
        matches = ranking.app_matches(app, knn_query, vector, terms, candidates=wide, limit=limit)
        found.extend(post_filters.kept(tree, matches))
    results = heapq.nlargest(top_k, (r for r in found if r.score >= threshold), key=lambda r: r.score)
    results = [r for r in results if scope.holds(r)]
    if audit:
        _audit_read(scope, "memory.search", filters, results, query_length=len(query), place=place)
    return results


def memory_find(*, scope: Scope, memory_id: str, app_id: str | None = None) -> MemoryRecord:
    """One memory by id (one HMGET per app of the scope), unaudited: for services that act on it."""
    memory_id = clean_id(memory_id, "memory_id")
    apps = [a for a in scope.apps if app_id is None or a.app_id == app_id]
    if not apps:
        raise NotFound()
    with store.store_errors():
        # One pipeline per store the scope's apps live on (one in all, unless MEMADMIN_STORES is set).
        pipes: dict[str, object] = {}
        for app in apps:
            if app.store not in pipes:
                pipes[app.store] = store.client(on=app.store).pipeline(transaction=False)
            pipes[app.store].hmget(f"{store.key_prefix(app.collection)}{memory_id}", *index.RETURN_FIELDS)
        replies = {name: iter(pipe.execute()) for name, pipe in pipes.items()}
        rows = [next(replies[app.store]) for app in apps]
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
    scope.require(cap.READ)
    record = memory_find(scope=scope, memory_id=memory_id, app_id=app_id)
    if audit:
        _audit_read(scope, "memory.get", EVERYTHING, [record], user=record.user_id)
    return record


def memory_history(*, scope: Scope, memory_id: str, app_id: str | None = None) -> list[dict]:
    scope.require(cap.READ)
    record = memory_find(scope=scope, memory_id=memory_id, app_id=app_id)
    app = scope.app(record.app_id)
    return history_for(app.collection, [record.id])[record.id]


def _aggregate_batches(app: AppRef, tree: Node, batch_size: int) -> Iterator[list[MemoryRecord]]:
    for documents in index_queries.batches(app.place, render(tree), batch_size=batch_size):
        yield records_from(app, documents)


def memory_export(
    *,
    scope: Scope,
    filters: Node = EVERYTHING,
    batch_size: int = 500,
    with_history: bool = True,
    audit: bool = True,
) -> Iterator[dict]:
    """Plain dicts, one per memory, produced batch by batch whatever the number of matches."""
    scope.require(cap.EXPORT)
    if scope.user_id is None and pinned_value(filters, "user_id") is None:
        scope.require(cap.EXPORT_APP)
    planned = plan(scope, filters)
    exported = 0
    pinned_user = pinned_value(scope.narrowed(filters), "user_id")
    # A whole-app export carries everyone in it: each person is named on the audit row (O(people) rows).
    people: Counter = Counter()
    try:
        for app, tree in planned:
            for batch in _aggregate_batches(app, tree, batch_size):
                batch = [r for r in batch if scope.holds(r)]
                history = history_for(app.collection, [r.id for r in batch]) if with_history else {}
                for record in batch:
                    item = record.as_dict()
                    if with_history:
                        item["history"] = history.get(record.id, [])
                    exported += 1
                    if pinned_user is None and record.user_id:
                        people[record.user_id] += 1
                    yield item
    finally:
        if audit:
            audit_record(
                scope=scope,
                action="memory.export",
                user_id=pinned_user,
                app_id=planned[0][0].app_id if len(planned) == 1 else "",
                count=exported,
                subjects=people,
            )


def memory_group_counts(
    *, scope: Scope, field: str, filters: Node = EVERYTHING, limit: int | None = None
) -> list[tuple[str, int]]:
    """Memories per user_id, agent_id or run_id across the scope's apps, largest first."""
    scope.require(cap.READ)
    if field not in ("user_id", "agent_id", "run_id"):
        raise ValidationError("Counts group by user_id, agent_id or run_id.", field="field")
    return entity_lists.group_counts_of(plan(scope, filters), field, limit=limit)


def memory_groups(*, scope: Scope, field: str, filters: Node, limit: int = 50) -> list[dict]:
    """The runs or agents of the matches (a person's, on their page): per value how many memories and when
    the newest was written, largest first. One FT.AGGREGATE per app over the matches only: the cost follows
    the person, never the app."""
    scope.require(cap.READ)
    entity_lists.check(field, limit, "limit")
    return entity_lists.groups_of(plan(scope, filters), field, limit=limit)


def memory_entities(
    *,
    scope: Scope,
    field: str,
    filters: Node = EVERYTHING,
    prefix: str = "",
    after: str | None = None,
    page_size: int = 25,
) -> EntityPage:
    """The agents or runs of the scope by id (those starting with ``prefix``), the page after id ``after``:
    any depth, and each page costs what it shows (entity_lists)."""
    scope.require(cap.READ)
    entity_lists.check(field, page_size, "page_size")
    after = clean_id(after, field) if after else None
    return entity_lists.entity_page(plan(scope, filters), field, prefix=prefix, after=after, page_size=page_size)


def memory_entity(*, scope: Scope, field: str, value: str, filters: Node = EVERYTHING) -> Entity:
    """One agent or run with its counts in the scope; one without memories in it is NotFound."""
    scope.require(cap.READ)
    entity_lists.check(field, 1, "page_size")
    found = entity_lists.entities_of(plan(scope, filters), field, [clean_id(value, field)])
    if not found:
        raise NotFound()
    return found[0]


def memory_counts(
    *, scope: Scope, filters: Node = EVERYTHING, top: int = 10, max_age: int = 0, fresh: bool = False
) -> Counts:
    """Memories per app, per agent and per user, counted by the engine (FT.AGGREGATE).

    Per-app figures are exact. The top-users list keeps each app's 3*top largest
    groups, so a user ranked low in every app may be missing from the merged list.
    ``users`` counts distinct user_ids across the apps (one person with memories in two apps is one user):
    the engine counts them when one app holds memories, else the apps' user_id sets are merged here —
    O(distinct users of this scope), never anything outside it. Whole-tenant counts cost O(N)
    in the engine (seconds at 1M memories): pages that show them on every view pass
    ``max_age`` to reuse an answer that many seconds old; ``fresh`` counts anew and replaces that answer
    (a page that has just deleted a memory).
    """
    scope.require(cap.READ)
    key = None
    if max_age:
        from django.core.cache import cache

        apps = ",".join(f"{a.app_id}/{a.collection}" for a in scope.apps)
        raw = f"{scope.tenant_id}|{apps}|{scope.user_id}|{filters!r}|{top}"
        key = "memadmin:counts:" + hashlib.sha1(raw.encode()).hexdigest()
        cached = None if fresh else cache.get(key)
        if cached is not None:
            return cached
    counts = entity_lists.counts_of(plan(scope, filters), top=top)
    if key:
        cache.set(key, counts, max_age)
    return counts
