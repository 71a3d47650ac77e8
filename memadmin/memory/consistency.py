"""Index health and the per-app consistency monitor: what lets a deletion be proven without a SCAN.

Every hash under an app's prefix is in its index unless (a) the index could not hold it (FT.INFO's
``hash_indexing_failures``), (b) the index is still reading keys (``indexing``), or (c) the engine silently missed
it (mem0 #3948). The monitor rules out (c): it walks the app's prefix (SCAN, throttled, resumable), re-indexes
what the index lacks and reports the rest. So a scoped count of 0 is complete when the index exists, is not
indexing, has no indexing failure newer than the last clean pass, and that pass found nothing missing.

Count first, membership only when needed: a pass SCANs and counts the prefix and compares with FT.INFO read at
its start and end (``num_docs``, ``max_doc_id``, failures, not indexing) and the server's command counters (same
``run_id``; no RENAME, RENAMENX, MOVE, SWAPDB, FT.CREATE, FT.DROPINDEX or FT.ALTER). Unchanged, with exactly
``num_docs`` keys counted, the pass is clean without one lookup; otherwise, and on engines without ``max_doc_id``
(valkey-search), it is a membership pass (an FT.SEARCH per SCAN page). Why that is a proof, and the one residual
assumption (nobody runs CONFIG RESETSTAT or re-creates the index by hand during a pass):
docs/architecture.md, "Why a count of 0 proves an erasure". MEMADMIN_MONITOR_COUNT_FIRST=0 turns the fast path off.

State lives in one Valkey hash per collection (``memadmin:health:<collection>``), beside the data it describes: no
model, no migration, shared by every process.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from django.conf import settings

from memadmin.memory import index, index_queries, store
from memadmin.memory.store import Place

MAX_REPORTED = 50  # keys listed by name in a report; the count is always exact


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
    checked_docs: int | None = None  # the index's documents when those keys were counted
    missing: int = 0  # hashes the last pass found outside the index and could not re-index
    repaired: int = 0
    unindexed_keys: list[str] = field(default_factory=list)
    checked_at: str | None = None  # end of the last complete monitor pass
    info_at: str | None = None  # when FT.INFO was read
    running: bool = False  # a monitor pass is part-way through
    mode: str | None = None  # how the last pass proved itself: "count" (counts only) or "membership"
    fallback: str | None = None  # why the last pass could not stay count-only

    @property
    def drift(self) -> int | None:
        """Keys minus documents, both as of the last check: positive means hashes the index did not hold
        then. (The documents now, against keys counted earlier, would only measure the writes since.)"""
        if self.keys is None:
            return None
        return self.keys - (self.num_docs if self.checked_docs is None else self.checked_docs)

    @property
    def docs_at_check(self) -> int | None:
        """The documents the index held at the last check (the figure drift compares the keys with)."""
        if self.keys is None:
            return None
        return self.num_docs if self.checked_docs is None else self.checked_docs

    @property
    def docs_since_check(self) -> int | None:
        """Documents now minus documents at the last check: the writes (or, negative, deletions) since, which
        is why the documents now can differ from the keys counted then while the drift is 0."""
        at_check = self.docs_at_check
        return None if at_check is None else self.num_docs - at_check

    def as_dict(self) -> dict:
        return {**asdict(self), "drift": self.drift}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _read(place: Place) -> dict:
    with store.store_errors():
        raw = store.client(on=place.store).hgetall(index.health_key(place.collection))
    return {index.decode(k): index.decode(v) for k, v in raw.items()}


def _write(place: Place, **values) -> None:
    with store.store_errors():
        mapping = {k: json.dumps(v) for k, v in values.items()}
        store.client(on=place.store).hset(index.health_key(place.collection), mapping=mapping)


def _load(state: dict, name: str, default=None):
    try:
        return json.loads(state[name]) if name in state else default
    except ValueError:
        return default


def index_health(*, place: Place, max_age: float | None = None) -> Health:
    """The app's index health. FT.INFO costs ~100-200 ms at 1M memories, so its figures are reused for
    ``max_age`` seconds (MEMADMIN_INDEX_HEALTH_MAX_AGE; 0 reads it every time)."""
    max_age = settings.MEMADMIN_INDEX_HEALTH_MAX_AGE if max_age is None else max_age
    state = _read(place)
    info_at = _load(state, "info_at")
    fresh = info_at is not None and time.time() - _load(state, "info_epoch", 0) <= max_age
    if fresh:
        exists, num_docs = _load(state, "exists", True), _load(state, "num_docs", 0)
        failures, indexing = _load(state, "failures", 0), _load(state, "indexing", False)
        standin = _load(state, "standin", False)
    else:
        index.ensure(place)
        details = index.inspect(place)
        exists, num_docs, failures, indexing = details.exists, details.num_docs, details.failures, details.indexing
        standin = details.standin
        info_at = _now()
        _write(
            place,
            exists=exists,
            num_docs=num_docs,
            failures=failures,
            indexing=indexing,
            standin=standin,
            info_at=info_at,
            info_epoch=time.time(),
        )
    health = Health(
        collection=place.collection,
        healthy=True,
        exists=exists,
        num_docs=num_docs,
        failures=failures,
        baseline_failures=_load(state, "baseline_failures", 0),
        indexing=indexing,
        keys=_load(state, "keys"),
        checked_docs=_load(state, "checked_docs"),
        missing=_load(state, "missing", 0),
        repaired=_load(state, "repaired", 0),
        unindexed_keys=_load(state, "unindexed_keys", []),
        checked_at=_load(state, "checked_at"),
        info_at=info_at,
        running=_load(state, "scan") is not None,
        mode=_load(state, "mode"),
        fallback=_load(state, "fallback"),
    )
    if health.checked_at is None:
        # No monitor pass yet: the count the index made when ensure() created it, if it did.
        baseline = index.created_baseline(place)
        if baseline is None:
            health.reasons.append("the consistency monitor has not checked this app yet")
        else:
            health.checked_at, health.keys, health.mode = baseline["at"], baseline["keys"], "created"
            health.checked_docs = baseline.get("docs", baseline["keys"])
    if not exists:
        health.reasons.append("the index does not exist")
    if standin:
        health.reasons.append("an offboarding's empty stand-in index answers for this app")
    if indexing:
        health.reasons.append("the index is still reading keys in the background")
    if failures < health.baseline_failures:
        # The counter never goes down: this is another index than the one last checked (re-created by hand
        # or by another client). Nothing measured on the old one vouches for it.
        health.reasons.append("the index was re-created since the last check")
    elif failures > health.baseline_failures:
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


def _reindex(place: Place, keys: list[str]) -> None:
    with store.store_errors():
        pipe = store.client(on=place.store).pipeline(transaction=False)
        for key in keys:
            pipe.eval(_REINDEX, 1, key)
        pipe.execute()


# The monitor is background work beside the requests it protects (bench "monitor": browse p95 during a 1M
# check went +93% with SCAN COUNT 500 at normal priority, +17% with COUNT 200 in a niced thread, same keys/s).
SCAN_COUNT = 200  # slots per SCAN call: each call holds the server for its whole length
MONITOR_NICE = 10


def low_priority(fn: Callable, *args, **kwargs):
    """Run ``fn(*args, stop=event, **kwargs)`` in a thread of its own at a lower CPU priority (Linux schedules
    threads, so the nice value applies to that thread alone and ends with it: the worker's other tasks keep
    their priority). If the caller is interrupted (Ctrl-C, a worker shutting down), ``stop`` is set and the
    caller waits for ``fn`` to notice it, so nothing keeps walking after the caller released its lock."""
    outcome: dict = {}
    stop = threading.Event()

    def run() -> None:
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + MONITOR_NICE))
        except (OSError, AttributeError):  # not Linux, or not allowed: run at the caller's priority
            pass
        try:
            outcome["value"] = fn(*args, stop=stop, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="memadmin-monitor", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:
        stop.set()
        thread.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def consistency_step(
    *, place: Place, budget_seconds: float = 30.0, batch_size: int = SCAN_COUNT, keys_per_second: int | None = None
) -> Health:
    """Advance this app's monitor pass for up to ``budget_seconds``: SCAN the prefix, count keys, find
    hashes the index lacks, re-index them, report what stays missing. Resumes from the saved SCAN cursor;
    a finished pass becomes the "last counted" result that index_health() compares against. The walk runs
    at a lower CPU priority (low_priority)."""
    rate = settings.MEMADMIN_MONITOR_KEYS_PER_SECOND if keys_per_second is None else keys_per_second
    lock = f"memadmin:health-lock:{place.collection}"
    hold = int(min(budget_seconds, 3600)) + 60
    with store.store_errors():
        if not store.client(on=place.store).set(lock, "1", nx=True, ex=hold):  # another worker is walking this app
            return index_health(place=place)
    try:
        return low_priority(_step, place, budget_seconds, batch_size, rate)
    finally:
        with store.store_errors():
            store.client(on=place.store).delete(lock)


# Commands that can change which keys the index's documents stand for without moving its counters, or
# reset those counters (see the module docstring, condition 2).
_GUARDED = ("rename", "renamenx", "move", "swapdb", "ft.create", "ft.dropindex", "ft._dropindexifx", "ft.alter")


def _server_marks(place: Place) -> dict:
    """The identity of the server the collection lives on, and its calls of the guarded commands and of SCAN
    (INFO, not FT.*)."""
    with store.store_errors():
        client = store.client(on=place.store)
        run_id = client.info("server").get("run_id")
        stats = {name.removeprefix("cmdstat_").lower(): value for name, value in client.info("commandstats").items()}
    calls = {name: int((stats.get(name) or {}).get("calls", 0)) for name in (*_GUARDED, "scan")}
    return {"run_id": run_id, "calls": calls}


def _count_verdict(scan: dict, end: index.IndexInfo, marks: dict) -> str | None:
    """None when a count-first pass proves the app clean; otherwise why the membership pass must run."""
    start, begun = scan["index_at_start"], scan["marks_at_start"]
    if not end.exists or end.indexing:
        return "the index changed state during the pass"
    if (end.num_docs, end.max_doc_id, end.failures) != (start["num_docs"], start["max_doc_id"], start["failures"]):
        return "the index changed during the pass"
    if marks["run_id"] != begun["run_id"]:
        return "the server restarted during the pass"
    if begun["calls"]["move"] or begun["calls"]["swapdb"]:
        return "MOVE or SWAPDB ran on this server (they can leave documents without keys)"
    if any(marks["calls"][name] != begun["calls"][name] for name in _GUARDED):
        return "a rename or index command ran during the pass"
    if marks["calls"]["scan"] < begun["calls"]["scan"] + scan["own_scans"]:
        return "the server's statistics were reset during the pass"
    if scan["all_keys"] != end.num_docs:
        return f"{scan['all_keys']} keys under the prefix, {end.num_docs} documents"
    return None


def _new_pass(place: Place, details: index.IndexInfo, *, count_first: bool, fallback: str | None = None) -> dict:
    scan = {
        "mode": "count" if count_first else "membership",
        "cursor": 0,
        "keys": 0,
        "all_keys": 0,
        "own_scans": 0,
        "missing": [],
        "missing_count": 0,
        "repaired": 0,
        "own_failures": 0,
        "failures_at_start": details.failures,
        "started_at": _now(),
        "fallback": fallback,
    }
    if count_first:
        scan["index_at_start"] = {
            "num_docs": details.num_docs,
            "max_doc_id": details.max_doc_id,
            "failures": details.failures,
        }
        scan["marks_at_start"] = _server_marks(place)
    return scan


def _step(place: Place, budget_seconds: float, batch_size: int, rate: int, *, stop: threading.Event) -> Health:
    collection = place.collection
    index.ensure(place)
    state = _read(place)
    scan = _load(state, "scan")
    started = time.monotonic()
    if scan is None:  # a new pass: remember the index counters it starts from
        details = index.inspect(place)
        if details.indexing:
            index.wait_indexed(place, timeout=budget_seconds if budget_seconds < 600 else 600)
            details = index.inspect(place)
        count_first = settings.MEMADMIN_MONITOR_COUNT_FIRST and details.max_doc_id is not None
        scan = _new_pass(place, details, count_first=count_first)
    client = store.client(on=place.store)
    prefix = store.key_prefix(collection)
    stand_in = store.offboarding_prefix(collection).encode()
    # The throttle paces the walk as a whole (keys walked / rate), so sleep overshoot evens out.
    walked, paced_from = 0, time.monotonic()
    while True:
        with store.store_errors():
            cursor, raw_keys = client.scan(cursor=scan["cursor"], match=f"{prefix}*", count=batch_size)
        scan["own_scans"] = scan.get("own_scans", 0) + 1
        scan["cursor"] = int(cursor)
        # An offboarding's stand-in prefix lives under the app's own; its keys are not memories (but the
        # index's prefix matches them, so the count-first comparison counts them: "all_keys").
        raw_keys = [k if isinstance(k, bytes) else str(k).encode() for k in raw_keys]
        memories = [k for k in raw_keys if not k.startswith(stand_in)]
        scan["keys"] += len(memories)
        scan["all_keys"] = scan.get("all_keys", 0) + len(raw_keys)
        if memories and scan.get("mode", "membership") == "membership":
            _membership(place, [k.decode() for k in memories], scan)
        if scan["cursor"] == 0:
            details = index.inspect(place)
            if scan.get("mode") != "count":
                break
            verdict = _count_verdict(scan, details, _server_marks(place))
            if verdict is None:
                break
            # Churn or a difference: the counts cannot vouch for this pass; ask the index key by key.
            scan = _new_pass(place, details, count_first=False, fallback=verdict)
            walked, paced_from = 0, time.monotonic()
        elif rate:  # throttle: the monitor must not crowd out the requests it protects
            walked += len(raw_keys)
            pause = walked / rate - (time.monotonic() - paced_from)
            if pause > 0:
                time.sleep(pause)
        if time.monotonic() - started >= budget_seconds or stop.is_set():  # resumable from the saved cursor
            _write(place, scan=scan)
            return index_health(place=place)
    # Failures counted before this pass began belong to hashes the pass has now seen: missing ones are
    # reported, gone ones are gone. Only failures newer than the pass's start stay unexplained.
    baseline = scan["failures_at_start"] + scan.get("own_failures", 0)
    if scan["missing_count"]:  # unhealthy anyway, for what it reports; keep the old baseline for the record
        baseline = _load(state, "baseline_failures", 0)
    _write(
        place,
        keys=scan["keys"],
        checked_docs=details.num_docs,
        missing=scan["missing_count"],
        repaired=scan["repaired"],
        unindexed_keys=scan["missing"],
        checked_at=_now(),
        baseline_failures=baseline,
        num_docs=details.num_docs,
        failures=details.failures,
        indexing=details.indexing,
        exists=details.exists,
        info_at=_now(),
        info_epoch=time.time(),
        pass_seconds=round(time.monotonic() - started, 3),
        mode=scan.get("mode", "membership"),
        fallback=scan.get("fallback"),
    )
    with store.store_errors():
        store.client(on=place.store).hdel(index.health_key(collection), "scan")
    return index_health(place=place, max_age=float("inf"))  # FT.INFO was just read: ~0.3 s at 1M


def _membership(place: Place, keys: list[str], scan: dict) -> None:
    """The membership pass's work for one batch: which keys the index lacks, re-index them, count the rest."""
    collection = place.collection
    ids = [index.memory_id_of(collection, k) for k in keys]
    held = index_queries.held(place, ids)
    absent = [k for k, i in zip(keys, ids) if i not in held]
    if not absent:
        return
    # Re-writing a hash the index cannot hold fails again and bumps the failure counter:
    # those failures are this pass's own, not news for the health check.
    before = index.inspect(place).failures
    _reindex(place, absent)
    scan["own_failures"] += max(0, index.inspect(place).failures - before)
    still = index_queries.held(place, [index.memory_id_of(collection, k) for k in absent])
    unrepaired = [k for k in absent if index.memory_id_of(collection, k) not in still]
    scan["repaired"] += len(absent) - len(unrepaired)
    scan["missing_count"] += len(unrepaired)
    scan["missing"] = (scan["missing"] + unrepaired)[:MAX_REPORTED]


def consistency_check(*, place: Place, keys_per_second: int | None = None) -> Health:
    """One whole pass, start to end (manage.py index_health --check, tests, the bench)."""
    with store.store_errors():
        store.client(on=place.store).hdel(index.health_key(place.collection), "scan")
    return consistency_step(place=place, budget_seconds=float("inf"), keys_per_second=keys_per_second)


def last_checked(*, place: Place) -> str:
    """When the app's last complete pass ended ("" if never): the sweep walks the stalest apps first."""
    return _load(_read(place), "checked_at") or ""


def health_stale(*, place: Place) -> None:
    """The index was just replaced (an offboarding's stand-in): the next index_health reads FT.INFO again
    instead of vouching with figures of the index that is gone."""
    with store.store_errors():
        store.client(on=place.store).hdel(index.health_key(place.collection), "info_epoch")


def health_forget(*, place: Place) -> None:
    """An offboarded app has no index to describe."""
    with store.store_errors():
        store.client(on=place.store).delete(index.health_key(place.collection))
