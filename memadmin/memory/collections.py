"""The memory service's front door for whole collections, stores and index health.

The tenants app reaches the memory service through its public modules only (scope, capabilities, models,
errors, records, selectors, services, filters and ids as value types, and this one); the engine rooms
(store, index, bulk, consistency, history, embedding, embedded, moves, imports) stay private behind it.

Per-app work takes the app's AppRef, which says which store the app lives on (its ``place``, handed to the
engines), or a scope and an app_id; the store-level administration that belongs to no tenant (which stores
exist, their status, the claim of a Mem0 collection nobody registered yet) takes plain values, the store
always named.
"""

from __future__ import annotations

import time

from memadmin.memory import consistency, index, moves, store
from memadmin.memory.bulk import app_drop, app_summary, idle_runs, matching_drop
from memadmin.memory.consistency import Health
from memadmin.memory.errors import MemoryServiceError
from memadmin.memory.imports import ImportPlan, ImportRow, import_row, memory_import_plan, memory_import_write
from memadmin.memory.moves import app_copy, app_source_drop
from memadmin.memory.purge import interval as purge_interval
from memadmin.memory.purge import purge_due, purge_status
from memadmin.memory.purge import window as purge_window
from memadmin.memory.scope import AppRef
from memadmin.memory.status import disk_status, note_state, other_stores_status, store_status

DEFAULT_STORE = store.DEFAULT


# --- stores -----------------------------------------------------------------------------


def store_names() -> list[str]:
    return store.store_names()


def store_public_url(name: str) -> str:
    """The store's URL without its password: what a tenant's Mem0 OSS agents point at."""
    return store.public_url(name)


def store_for_new_app() -> str:
    """Where a new app goes: the store with the most free memory (asks each store; one store: no question)."""
    return store.store_for_new_app()


def store_reconnect() -> None:
    """Drop cached connections, so that the next call connects afresh (a job waiting out an outage)."""
    store.reset()


# --- index health and the consistency monitor ---------------------------------------------


def app_health(*, app: AppRef, max_age: float | None = None) -> Health:
    return consistency.index_health(place=app.place, max_age=max_age)


def app_consistency_check(*, app: AppRef, keys_per_second: int | None = None) -> Health:
    """A whole consistency pass over the app's prefix (throttled SCAN, re-indexing what it can)."""
    return consistency.consistency_check(place=app.place, keys_per_second=keys_per_second)


def app_consistency_step(*, app: AppRef, budget_seconds: float) -> Health:
    """One resumable step of the consistency monitor, stopping after its time budget."""
    return consistency.consistency_step(place=app.place, budget_seconds=budget_seconds)


def app_last_checked(*, app: AppRef) -> str:
    return consistency.last_checked(place=app.place)


def collection_key_count(*, collection: str, store_name: str) -> int:
    """Keys under a collection's prefix on one store (a move counts its source before copying)."""
    return moves.key_count(collection, store_name)


# --- registering an existing Mem0 OSS collection ---------------------------------------------


def collection_claim_key(collection: str) -> str:
    """Where whoever runs a Mem0 OSS collection proves it, before a tenant registers it as an app."""
    return store.claim_key(collection)


def collection_claim_read(*, collection: str, store_name: str) -> str | None:
    """The claim set for ``collection`` on the store ``store_name`` (where the agents that write it can write)."""
    return store.claim_read(store.Place(store_name, collection))


def collection_exists(*, collection: str, store_name: str) -> bool:
    """Whether Mem0 made an index of that name on that store (it does when its first memory is written)."""
    return index.info(store.Place(store_name, collection)) is not None


def collection_adopt(*, app: AppRef) -> None:
    """Take over a registered collection: Mem0's comma-split, case-insensitive index is re-made with exact TAGs
    over the same keys (hashes kept); vectors of another size are refused. A refusal forgets what was cached."""
    try:
        index.ensure(app.place)
    except MemoryServiceError:
        index.forget(app.place)
        raise


def collection_adopted(*, app: AppRef) -> None:
    """After the app exists: the claim has done its work, and the app's health is read afresh."""
    store.claim_clear(app.place)
    consistency.index_health(place=app.place, max_age=0)


def liveness_mark(*, key: str, ttl_seconds: int) -> None:
    """Say "alive" under ``key`` on the default store for ``ttl_seconds`` (a worker's heartbeat)."""
    with store.store_errors():
        store.client().set(key, str(time.time()), ex=ttl_seconds)


def liveness_seen(*, key: str) -> bool:
    """Whether ``key``'s last "alive" is still within its TTL."""
    with store.store_errors():
        return bool(store.client().exists(key))


__all__ = [
    "DEFAULT_STORE",
    "Health",
    "ImportPlan",
    "ImportRow",
    "app_consistency_check",
    "app_consistency_step",
    "app_copy",
    "app_drop",
    "app_health",
    "app_last_checked",
    "app_source_drop",
    "app_summary",
    "collection_adopt",
    "collection_adopted",
    "collection_claim_key",
    "collection_claim_read",
    "collection_exists",
    "collection_key_count",
    "disk_status",
    "idle_runs",
    "import_row",
    "liveness_mark",
    "liveness_seen",
    "matching_drop",
    "memory_import_plan",
    "memory_import_write",
    "note_state",
    "other_stores_status",
    "purge_due",
    "purge_interval",
    "purge_status",
    "purge_window",
    "store_for_new_app",
    "store_names",
    "store_public_url",
    "store_reconnect",
    "store_status",
]
