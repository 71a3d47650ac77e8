"""Agents and runs of a scope's apps, one page at a time, for selectors.memory_entities and memory_groups; and the
per app / agent / user counts of selectors.memory_counts.

A page costs what it shows: its ids come from the index's TAG values (FT.TAGVALS, O(distinct ids) of each app,
never O(memories)), ordered by id and cut after the last id of the previous page; then one FT.AGGREGATE per app
over the memories of the page's ids only counts them (memories, people, first and last write). An id whose
memories are all outside the scope, or deleted while the engine still lists the value, counts 0 and is not shown.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from memadmin.memory import index_queries
from memadmin.memory.errors import ValidationError
from memadmin.memory.filters import In, Node, and_, render
from memadmin.memory.records import Counts, Entity, EntityPage
from memadmin.memory.scope import AppRef

Planned = list[tuple[AppRef, Node]]
MAX_GROUPS = 200  # agents or runs on one page


def check(field: str, size: int, name: str) -> None:
    if field not in ("agent_id", "run_id"):
        raise ValidationError("Groups are by agent_id or run_id.", field="field")
    if not 1 <= size <= MAX_GROUPS:
        raise ValidationError(f"{name} must be between 1 and {MAX_GROUPS}.", field=name)


def _when(epoch: float) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def entities_of(planned: Planned, field: str, ids: list[str]) -> list[Entity]:
    """The given ids of ``field`` with their counts in scope, in the order given; ids without memories left out."""
    if not ids:
        return []
    merged: dict[str, dict] = {}
    shared = []  # ids with memories in more than one app: their people are counted once across apps
    for app, tree in planned:
        for value, line in index_queries.entity_summary(
            app.place, render(and_(tree, In(field, tuple(ids)))), field
        ).items():
            entity = merged.setdefault(value, {"count": 0, "people": 0, "first": 0.0, "last": 0.0, "apps": []})
            if entity["apps"]:
                shared.append(value)
            entity["count"] += line["count"]
            entity["people"] += line["people"]
            entity["first"] = min(entity["first"] or line["first"], line["first"] or entity["first"])
            entity["last"] = max(entity["last"], line["last"])
            entity["apps"].append(app.app_id)
    if shared:
        people: dict[str, set[str]] = {}
        for app, tree in planned:
            query = render(and_(tree, In(field, tuple(dict.fromkeys(shared)))))
            for value, users in index_queries.people_of(app.place, query, field).items():
                people.setdefault(value, set()).update(users)
        for value in shared:
            merged[value]["people"] = len(people.get(value, ()))
    return [
        Entity(
            id=value,
            count=merged[value]["count"],
            people=merged[value]["people"],
            apps=sorted(merged[value]["apps"]),
            first_write=_when(merged[value]["first"]),
            last_write=_when(merged[value]["last"]),
        )
        for value in ids
        if merged.get(value, {}).get("count")
    ]


def entity_page(
    planned: Planned, field: str, *, prefix: str = "", after: str | None = None, page_size: int = 25
) -> EntityPage:
    """The ``page_size`` ids of ``field`` after ``after`` (by code point) that start with ``prefix``, counted."""
    candidates = set()
    for app, _ in planned:
        candidates |= index_queries.tag_values(app.place, field)
    ordered = sorted(v for v in candidates if v.startswith(prefix) and (after is None or v > after))
    items: list[Entity] = []
    position = 0
    while len(items) < page_size and position < len(ordered):
        chunk = ordered[position : position + page_size - len(items)]
        position += len(chunk)
        items.extend(entities_of(planned, field, chunk))
    more = position < len(ordered)
    return EntityPage(items=items, after=after, next_after=items[-1].id if more and items else None)


def groups_of(planned: Planned, field: str, *, limit: int) -> list[dict]:
    """The ``limit`` largest values of ``field`` among the matches: how many memories, the newest write, apps."""
    merged: dict[str, dict] = {}
    for app, tree in planned:
        groups = index_queries.group_summary(app.place, render(tree), field, limit=limit)
        for value, (count, latest) in groups.items():
            group = merged.setdefault(value, {"id": value, "count": 0, "latest": 0.0, "apps": []})
            group["count"] += count
            group["latest"] = max(group["latest"], latest)
            group["apps"].append(app.app_id)
    groups = sorted(merged.values(), key=lambda g: (-g["count"], g["id"]))[:limit]
    for group in groups:
        group["last_write"] = _when(group["latest"])
    return groups


def counts_of(planned: Planned, *, top: int) -> Counts:
    """Memories per app (exact), per agent and per user (each app's 3*top largest groups, merged), and distinct
    users: counted by the engine when one app holds memories, else the apps' user_id sets merged here."""
    per_app: dict[str, int] = {}
    agents: Counter = Counter()
    users: Counter = Counter()
    populated = []
    for app, tree in planned:
        per_app[app.app_id] = index_queries.count(app.place, render(tree))
        if not per_app[app.app_id]:
            continue
        populated.append((app, tree))
        agents.update(index_queries.group_counts(app.place, render(tree), "agent_id"))
        users.update(index_queries.group_counts(app.place, render(tree), "user_id", limit=3 * top))
    if len(populated) == 1:
        app, tree = populated[0]
        distinct_users = index_queries.distinct(app.place, render(tree), "user_id")
    else:
        values = (index_queries.distinct_values(app.place, render(tree), "user_id") for app, tree in populated)
        distinct_users = len(set().union(*values))
    return Counts(
        total=sum(per_app.values()),
        per_app=per_app,
        per_agent=agents.most_common(top),
        per_user=users.most_common(top),
        users=distinct_users,
        agents=len(agents),
        counted_at=datetime.now(UTC),
    )


def group_counts_of(planned: Planned, field: str, *, limit: int | None) -> list[tuple[str, int]]:
    """Memories per value of ``field`` across the planned apps, largest first (each app's ``limit`` largest)."""
    counts: Counter = Counter()
    for app, tree in planned:
        counts.update(index_queries.group_counts(app.place, render(tree), field, limit=limit))
    return counts.most_common(limit)
