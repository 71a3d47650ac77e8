"""Deleting many people's memories at once: an agent's, a run's, the rows a page selected, or everything a
filter matches. Each person affected is erased on their own, through the same erasure path as the person
page's "Delete this run" and "Delete this agent's memories of this person" (tenants/jobs/services.erasure_request,
memory_delete_batch for rows), so each finds their own signed receipt, of the same kind, on their page.
Memories that name no user_id go in one more erasure, with its own receipt.

A selection too large for one request (over MEMADMIN_ERASURE_SYNC_LIMIT memories, or more than MAX_PEOPLE_NOW
people) goes whole to the erasure job, which ends in one receipt for all of it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings

from memadmin.memory import selectors, services
from memadmin.memory.errors import ValidationError
from memadmin.memory.filters import EVERYTHING, In, Node, and_, filter_from_fields, or_
from memadmin.memory.records import DeletionResult, MemoryRecord
from memadmin.memory.scope import Scope
from tenants.jobs.models import Job
from tenants.jobs.services import erasure_request

MAX_PEOPLE_NOW = 200  # people erased one by one inside a request; more go to one job
PEOPLE_SHOWN = 50  # people listed by name in a preview, most memories first
MAX_ROWS = 200  # rows one selection may name (the largest page)


@dataclass
class Preview:
    """What a deletion or an export of a selection would take: counted in the store, in the scope."""

    total: int
    people: int
    per_app: dict[str, int]
    per_user: list[tuple[str, int]]  # the PEOPLE_SHOWN with most memories
    unowned: int = 0  # memories that name no user_id

    @property
    def apps(self) -> int:
        return sum(1 for n in self.per_app.values() if n)


@dataclass
class Erased:
    """Per person erased: (user_id or "", memories deleted, receipt id); the jobs that took over the rest."""

    people: list[tuple[str, int, str | None]] = field(default_factory=list)
    deleted: int = 0
    remaining: int = 0
    jobs: list[Job] = field(default_factory=list)

    def take(self, user_id: str, outcome: DeletionResult | Job) -> None:
        if isinstance(outcome, Job):
            self.jobs.append(outcome)
        else:
            self.add(user_id, outcome)

    def add(self, user_id: str, result: DeletionResult) -> None:
        if result.deleted or result.remaining:
            self.people.append((user_id, result.deleted, result.receipt_id))
        self.deleted += result.deleted
        self.remaining += result.remaining


def selection_preview(*, scope: Scope, filters: Node) -> Preview:
    """Counts of everything ``filters`` match: per person (exact, one FT.AGGREGATE per app over the matches),
    per app (a count each), and how many name nobody."""
    per_user = selectors.memory_group_counts(scope=scope, field="user_id", filters=filters)
    per_app = {
        app.app_id: selectors.memory_count(scope=scope, filters=and_(filters, filter_from_fields(app_id=app.app_id)))
        for app in scope.apps
    }
    total = sum(per_app.values())
    owned = sum(n for _, n in per_user)
    return Preview(
        total=total,
        people=len(per_user),
        per_app=per_app,
        per_user=per_user[:PEOPLE_SHOWN],
        unowned=max(0, total - owned),
    )


def rows_found(*, scope: Scope, rows: list[tuple[str, str]]) -> list[MemoryRecord]:
    """The selected (app_id, memory_id) rows, each found in the scope (NotFound for any that is not)."""
    if len(rows) > MAX_ROWS:
        raise ValidationError(f"A selection holds at most {MAX_ROWS} rows; select all matching instead.")
    return [
        selectors.memory_get(scope=scope, memory_id=memory_id, app_id=app_id, audit=False)
        for app_id, memory_id in dict.fromkeys(rows)
    ]


def rows_preview(records: list[MemoryRecord]) -> Preview:
    per_app, per_user = Counter(r.app_id for r in records), Counter(r.user_id for r in records if r.user_id)
    return Preview(
        total=len(records),
        people=len(per_user),
        per_app=dict(per_app),
        per_user=per_user.most_common(PEOPLE_SHOWN),
        unowned=sum(1 for r in records if not r.user_id),
    )


def rows_filter(records: list[MemoryRecord]) -> Node:
    """Exactly these memories, as a filter (an export job carries it)."""
    by_app: dict[str, list[str]] = {}
    for record in records:
        by_app.setdefault(record.app_id, []).append(record.id)
    return or_(
        *(and_(filter_from_fields(app_id=app_id), In("memory_id", tuple(ids))) for app_id, ids in by_app.items())
    )


def erase_rows(*, scope: Scope, records: list[MemoryRecord]) -> Erased:
    """The selected rows, one batch (and one receipt) per person."""
    erased = Erased()
    people: dict[str, list[tuple[str, str]]] = {}
    for record in records:
        people.setdefault(record.user_id or "", []).append((record.id, record.app_id))
    for user_id, pairs in sorted(people.items()):
        erased.add(user_id, services.memory_delete_batch(scope=scope, memory_ids=pairs))
    return erased


def erase_matching(*, scope: Scope, fields: dict[str, str]) -> Erased:
    """Everything matching ``fields`` (user_id, agent_id, run_id, app_id: exact ids, or '*' for any), one
    erasure per person, then the memories that name nobody; or, too large for a request, one job."""
    filters = filter_from_fields(**fields)
    if scope.narrowed(filters) == EVERYTHING:
        raise ValidationError("A deletion needs at least one filter; offboard the app to delete all of it.")
    services.check_holds(scope=scope, filters=filters)  # before anyone is erased: all or nothing is refused
    people = selectors.memory_group_counts(scope=scope, field="user_id", filters=filters)
    erased = Erased()
    if len(people) > MAX_PEOPLE_NOW or sum(n for _, n in people) > settings.MEMADMIN_ERASURE_SYNC_LIMIT:
        erased.take("", erasure_request(scope=scope, filters=filters))
        return erased
    for user_id, _ in people:
        # A person whose index cannot vouch for a count of 0 right now gets a job (and its receipt) of their own.
        erased.take(user_id, erasure_request(scope=scope, filters=filter_from_fields(**{**fields, "user_id": user_id})))
    # What is left names nobody (or was written meanwhile); with a person's job still running it waits for it.
    if not erased.jobs and selectors.memory_count(scope=scope, filters=filters):
        erased.take("", erasure_request(scope=scope, filters=filters))
    return erased
