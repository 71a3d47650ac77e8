"""Index health and the per-app consistency monitor: what lets a deletion be proven without a SCAN.

The argument (README "Why a count of 0 proves an erasure"): every hash under an
app's prefix is in its index unless (a) the index could not hold it, which
FT.INFO counts in ``hash_indexing_failures``, (b) the index is still reading
keys in the background (``indexing``), or (c) the engine silently missed it
(mem0 #3948). The monitor below rules out (c): it walks the app's prefix (SCAN,
throttled, resumable), asks the index which of those keys it holds, re-indexes
what it can and reports the rest. So a scoped count of 0 is complete when the
index exists, is not indexing, has no indexing failure newer than the last
clean monitor pass, and that pass found no hash missing from the index.

State lives in one Valkey hash per collection (``memadmin:health:<collection>``),
beside the data it describes: no model, no migration, shared by every process.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from django.conf import settings

from memadmin.memory import index, store

MAX_REPORTED = 50  # keys listed by name in a report; the count is always exact


def _key(collection: str) -> str:
    return f"memadmin:health:{collection}"


@dataclass
class Health:
    collection: str
    healthy: bool
    reasons: list[str] = field(default_factory=list)
    exists: bool = True
    num_docs: int = 0
    failures: int = 0
    baseline_failures: int = 0
    indexing: bool = False
    keys: int | None = None  # keys under the prefix, as last counted by the monitor
    missing: int = 0  # hashes the last pass found outside the index and could not re-index
    repaired: int = 0
    unindexed_keys: list[str] = field(default_factory=list)
    checked_at: str | None = None  # end of the last complete monitor pass
    info_at: str | None = None  # when FT.INFO was read
    running: bool = False  # a monitor pass is part-way through

    @property
    def drift(self) -> int | None:
        return None if self.keys is None else self.keys - self.num_docs

    def as_dict(self) -> dict:
        return {**asdict(self), "drift": self.drift}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _read(collection: str) -> dict:
    with store.store_errors():
        raw = store.client().hgetall(_key(collection))
    return {index.decode(k): index.decode(v) for k, v in raw.items()}


def _write(collection: str, **values) -> None:
    with store.store_errors():
        store.client().hset(_key(collection), mapping={k: json.dumps(v) for k, v in values.items()})


def _load(state: dict, name: str, default=None):
    try:
        return json.loads(state[name]) if name in state else default
    except ValueError:
        return default


def index_health(*, collection: str, max_age: float | None = None) -> Health:
    """The app's index health. FT.INFO costs ~100-200 ms at 1M memories, so its figures are reused for
    ``max_age`` seconds (MEMADMIN_INDEX_HEALTH_MAX_AGE; 0 reads it every time)."""
    max_age = settings.MEMADMIN_INDEX_HEALTH_MAX_AGE if max_age is None else max_age
    state = _read(collection)
    info_at = _load(state, "info_at")
    fresh = info_at is not None and time.time() - _load(state, "info_epoch", 0) <= max_age
    if fresh:
        exists, num_docs = _load(state, "exists", True), _load(state, "num_docs", 0)
        failures, indexing = _load(state, "failures", 0), _load(state, "indexing", False)
    else:
        index.ensure(collection)
        details = index.inspect(collection)
        exists, num_docs, failures, indexing = details.exists, details.num_docs, details.failures, details.indexing
        info_at = _now()
        _write(collection, exists=exists, num_docs=num_docs, failures=failures, indexing=indexing,
               info_at=info_at, info_epoch=time.time())  # fmt: skip
    health = Health(
        collection=collection, healthy=True, exists=exists, num_docs=num_docs, failures=failures,
        baseline_failures=_load(state, "baseline_failures", 0), indexing=indexing, keys=_load(state, "keys"),
        missing=_load(state, "missing", 0), repaired=_load(state, "repaired", 0),
        unindexed_keys=_load(state, "unindexed_keys", []), checked_at=_load(state, "checked_at"), info_at=info_at,
        running=_load(state, "scan") is not None,
    )  # fmt: skip
    if not exists:
        health.reasons.append("the index does not exist")
    if indexing:
        health.reasons.append("the index is still reading keys in the background")
    if failures > health.baseline_failures:
        health.reasons.append(f"{failures - health.baseline_failures} hash(es) failed to index since the last check")
    if health.missing:
        health.reasons.append(f"{health.missing} hash(es) under the prefix are not in the index")
    health.healthy = not health.reasons
    return health


# Re-writing a hash's own fields makes the index read it again (a keyspace notification). In one script, so
# an erasure that UNLINKs the key meanwhile can never be undone by a stale copy written back.
# One key per script: in cluster mode the keys of a collection live in different slots.
_REINDEX = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
return #fields
"""


def _reindex(collection: str, keys: list[str]) -> None:
    with store.store_errors():
        pipe = store.client().pipeline(transaction=False)
        for key in keys:
            pipe.eval(_REINDEX, 1, key)
        pipe.execute()


def consistency_step(*, collection: str, budget_seconds: float = 30.0, batch_size: int = 2000,
                     keys_per_second: int | None = None) -> Health:  # fmt: skip
    """Advance this app's monitor pass for up to ``budget_seconds``: SCAN the prefix, count keys, find
    hashes the index lacks, re-index them, report what stays missing. Resumes from the saved SCAN cursor;
    a finished pass becomes the "last counted" result that index_health() compares against."""
    rate = settings.MEMADMIN_MONITOR_KEYS_PER_SECOND if keys_per_second is None else keys_per_second
    lock = f"memadmin:health-lock:{collection}"
    hold = int(min(budget_seconds, 3600)) + 60
    with store.store_errors():
        if not store.client().set(lock, "1", nx=True, ex=hold):  # another worker is walking this app
            return index_health(collection=collection)
    try:
        return _step(collection, budget_seconds, batch_size, rate)
    finally:
        with store.store_errors():
            store.client().delete(lock)


def _step(collection: str, budget_seconds: float, batch_size: int, rate: int) -> Health:
    index.ensure(collection)
    state = _read(collection)
    scan = _load(state, "scan")
    if scan is None:  # a new pass: remember the failure counter it starts from
        index.wait_indexed(collection, timeout=budget_seconds if budget_seconds < 600 else 600)
        scan = {"cursor": 0, "keys": 0, "missing": [], "missing_count": 0, "repaired": 0, "own_failures": 0,
                "failures_at_start": index.inspect(collection).failures, "started_at": _now()}  # fmt: skip
    client = store.client()
    prefix = store.key_prefix(collection)
    started = time.monotonic()
    while True:
        batch_started = time.monotonic()
        with store.store_errors():
            cursor, keys = client.scan(cursor=scan["cursor"], match=f"{prefix}*", count=batch_size)
        # An offboarding's stand-in prefix lives under the app's own; its keys are not memories.
        keys = [index.decode(k) for k in keys if not index.decode(k).startswith(store.offboarding_prefix(collection))]
        scan["cursor"] = int(cursor)
        scan["keys"] += len(keys)
        if keys:
            ids = [index.memory_id_of(k) for k in keys]
            held = index.held(collection, ids)
            absent = [k for k, i in zip(keys, ids) if i not in held]
            if absent:
                # Re-writing a hash the index cannot hold fails again and bumps the failure counter:
                # those failures are this pass's own, not news for the health check.
                before = index.inspect(collection).failures
                _reindex(collection, absent)
                scan["own_failures"] += max(0, index.inspect(collection).failures - before)
                still = index.held(collection, [index.memory_id_of(k) for k in absent])
                unrepaired = [k for k in absent if index.memory_id_of(k) not in still]
                scan["repaired"] += len(absent) - len(unrepaired)
                scan["missing_count"] += len(unrepaired)
                scan["missing"] = (scan["missing"] + unrepaired)[:MAX_REPORTED]
        if scan["cursor"] == 0:
            break
        if rate:  # throttle: the monitor must not crowd out the requests it protects
            pause = len(keys) / rate - (time.monotonic() - batch_started)
            if pause > 0:
                time.sleep(pause)
        if time.monotonic() - started >= budget_seconds:
            _write(collection, scan=scan)
            return index_health(collection=collection)
    details = index.inspect(collection)
    # Failures counted before this pass began belong to hashes the pass has now seen: missing ones are
    # reported, gone ones are gone. Only failures newer than the pass's start stay unexplained.
    baseline = scan["failures_at_start"] + scan.get("own_failures", 0)
    if scan["missing_count"]:  # unhealthy anyway, for what it reports; keep the old baseline for the record
        baseline = _load(state, "baseline_failures", 0)
    _write(collection, keys=scan["keys"], missing=scan["missing_count"], repaired=scan["repaired"],
           unindexed_keys=scan["missing"], checked_at=_now(), baseline_failures=baseline,
           num_docs=details.num_docs, failures=details.failures, indexing=details.indexing, exists=details.exists,
           info_at=_now(), info_epoch=time.time(), pass_seconds=round(time.monotonic() - started, 3))  # fmt: skip
    with store.store_errors():
        store.client().hdel(_key(collection), "scan")
    return index_health(collection=collection, max_age=0)


def consistency_check(*, collection: str, keys_per_second: int | None = None) -> Health:
    """One whole pass, start to end (manage.py index_health --check, tests, the bench)."""
    with store.store_errors():
        store.client().hdel(_key(collection), "scan")
    return consistency_step(collection=collection, budget_seconds=float("inf"), keys_per_second=keys_per_second)


def last_checked(*, collection: str) -> str:
    """When the app's last complete pass ended ("" if never): the sweep walks the stalest apps first."""
    return _load(_read(collection), "checked_at") or ""


def health_forget(*, collection: str) -> None:
    """An offboarded app has no index to describe."""
    with store.store_errors():
        store.client().delete(_key(collection))
