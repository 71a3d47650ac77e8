"""Erasure reaches the disk: erased texts leave the AOF, RDB snapshots and Mem0's history files in a window.

Deleting a hash removes it from memory, but the server's append-only file still holds the HSET that wrote it
(and the old text of every update) until the AOF is rewritten; Mem0's history SQLite keeps deleted rows in
free pages and in its WAL until they are overwritten and checkpointed. MEMADMIN_ERASURE_PURGE_SECONDS is the
longest an erased text may stay in any of those files.

How erasures are coalesced: each erasure marks its store (``erasure_mark``: a hash on that store holding the
server time of the first and the last erasure not yet purged, set by one script, so the times are the
store's own). The worker's purge pass (``purge_due``, on beat) starts a purge once the first pending erasure
of any store is near its due time, and then serves every store with a mark at once: per store one
``BGREWRITEAOF`` (and a ``BGSAVE`` where the store keeps RDB snapshots), read back from ``INFO persistence``
(``aof_rewrites`` moved past the count before ours, nothing in progress or scheduled, the last status ok),
then every history file: ``secure_delete`` on, ``VACUUM`` once for a file memadmin never vacuumed (rows
deleted before secure_delete was on sit in free pages), ``wal_checkpoint(TRUNCATE)``. A rewrite forks after
the store's cutoff time is read, so it serves every erasure marked before it; the mark is cleared only up to
that cutoff (a script compares the last erasure with it), so an erasure during the rewrite stays pending for
the next pass and a purge killed halfway leaves every mark in place.

A store that refuses the rewrite or CONFIG (a managed Valkey) is recorded as "not purged: <reason>" and its
mark is dropped (asking again every minute would not help); the run is then not complete, and purge_status
never reports those erasures as purged.

Each run is logged on the default store (``RUNS_KEY``, a sorted set by the run's start time), so
``purge_status`` can answer when text erased at a given time was purged.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from valkey import exceptions as vexc

from memadmin.memory import store
from memadmin.memory.errors import StoreUnavailable
from memadmin.memory.history_files import history_file_purge, history_files
from memadmin.memory.receipts import receipt_mark_purged

logger = logging.getLogger("memadmin.purge")

PENDING_KEY = "memadmin:purge:pending"  # on each store: {first, last} server times of erasures not yet purged
RUNS_KEY = "memadmin:purge:runs"  # on the default store: one JSON member per run, scored by its start time
LOCK_KEY = "memadmin:purge:lock"
RUNS_KEPT_DAYS = 400  # a receipt may ask about an erasure of last year
REWRITE_TIMEOUT_SECONDS = 1800

_MARK = """
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
redis.call('HSETNX', KEYS[1], 'first', now)
redis.call('HSET', KEYS[1], 'last', now)
return now
"""
_CLEAR = """
local last = redis.call('HGET', KEYS[1], 'last')
if not last then return 1 end
if tonumber(last) <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) return 1 end
redis.call('HSET', KEYS[1], 'first', ARGV[1])
return 0
"""
_UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_EXTEND = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end return 0"
# The purge lock expires unless its run renews it while it waits, so a worker killed mid-run blocks the next
# purge for a minute at most, not for the length of the longest rewrite.
LOCK_SECONDS = 60
_held: dict = {}  # this process's lock while it runs: {"token", "renewed"}


def _forbidden(exc: Exception) -> bool:
    """A command the server will not run (renamed, forbidden by ACL or by the provider), as opposed to one that
    failed this time ("Background append only file rewriting failed": a fork that failed)."""
    return "failed" not in str(exc).lower()


class NotPurged(Exception):
    """The server will not do it (a command refused): said in the run, never retried."""


class PurgeFailed(Exception):
    """Not now (unreachable, a rewrite that failed or timed out): the marks stay and the next pass tries again."""


def window() -> int:
    return settings.MEMADMIN_ERASURE_PURGE_SECONDS


def interval() -> int:
    """How often the worker's purge pass looks (beat): well inside the window, at most the sweep's period."""
    return max(1, min(settings.MEMADMIN_JOB_SWEEP_SECONDS, window() // 5))


# --- marking ------------------------------------------------------------------------------


def erasure_mark(*, on: str) -> None:
    """Note that text was erased on the store ``on`` (the app's: ``place.store``): its AOF needs a rewrite
    and the history files a checkpoint within the window. Called after the deletion, so a rewrite that starts
    after this mark cannot hold the text. A mark that cannot be written is logged, never raised: the
    deletion itself is done and verified."""
    try:
        client = store.client(on=on)
        with store.store_errors():
            client.eval(_MARK, 1, PENDING_KEY)
    except (StoreUnavailable, vexc.ValkeyError) as exc:
        logger.error("Could not mark an erasure for the disk purge (%s); it is purged with the next one.", exc)


def _pending(name: str) -> dict | None:
    with store.store_errors():
        raw = store.client(on=name).hgetall(PENDING_KEY)
    if not raw:
        return None
    return {k.decode(): float(v) for k, v in raw.items()}


# --- Valkey -------------------------------------------------------------------------------


def _persistence(client) -> dict:
    _renew()
    with store.store_errors():
        return client.info("persistence")


def _config(client, name: str) -> str | None:
    """A CONFIG value, or None where the server refuses CONFIG (managed services rename or forbid it)."""
    try:
        with store.store_errors():
            values = client.config_get(name)
    except vexc.ResponseError:
        return None
    value = values.get(name)
    return value.decode() if isinstance(value, bytes) else value


def _is_local(name: str) -> bool:
    parts = urlsplit(store.store_url(name))
    return parts.scheme == "unix" or parts.hostname in ("127.0.0.1", "localhost", "::1")


def _wait_aof(client, before: int, deadline: float) -> float:
    """Until the rewrite counted after ``before`` has ended; its status must be ok. Returns its duration."""
    while True:
        info = _persistence(client)
        done = int(info.get("aof_rewrites", 0)) > before
        if done and not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            status = info["aof_last_bgrewrite_status"]
            if status != "ok":
                raise PurgeFailed(f"the AOF rewrite failed (aof_last_bgrewrite_status={status})")
            return float(info.get("aof_last_rewrite_time_sec", 0))
        if time.monotonic() > deadline:
            raise PurgeFailed("the AOF rewrite did not finish in time; the next pass waits for it")
        time.sleep(0.05)


def _start_rewrite(client, deadline: float) -> int:
    """BGREWRITEAOF; one already running (started before our cutoff) is waited out first. Returns the
    ``aof_rewrites`` count before ours."""
    while True:
        before = int(_persistence(client).get("aof_rewrites", 0))
        try:
            with store.store_errors():
                client.bgrewriteaof()
            return before
        except vexc.ResponseError as exc:
            if "already in progress" not in str(exc):
                if _forbidden(exc):
                    raise NotPurged(f"BGREWRITEAOF refused: {exc}") from exc
                raise PurgeFailed(f"BGREWRITEAOF: {exc}") from exc
        if time.monotonic() > deadline:
            raise PurgeFailed("another AOF rewrite kept running; the next pass tries again")
        time.sleep(0.1)


def _aof_files_settled(client, deadline: float) -> None:
    """On this machine's server, wait until the old base and incr files are gone from the AOF directory
    (the server deletes them in the background once the new manifest is written)."""
    directory, dirname = _config(client, "dir"), _config(client, "appenddirname")
    if not directory or not dirname:
        return
    folder = Path(directory) / dirname
    manifests = list(folder.glob("*.manifest")) if folder.is_dir() else []
    while manifests and time.monotonic() < deadline:
        listed = {manifests[0].name}
        for line in manifests[0].read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "file":
                listed.add(parts[1])
        if {p.name for p in folder.iterdir()} <= listed:
            return
        time.sleep(0.05)


def _rdb(client, name: str, deadline: float) -> str:
    """Rewrite the RDB snapshot with live data where the store keeps one (a ``save`` schedule, or a dump file
    beside a server on this machine); an old snapshot would keep erased text."""
    save = _config(client, "save")
    info = _persistence(client)
    keeps = bool(save and save.strip())
    if save is None:  # CONFIG refused: a server that saved since it started keeps snapshots
        keeps = int(info.get("rdb_saves", 0)) > 0
    elif not keeps and _is_local(name):
        directory, filename = _config(client, "dir"), _config(client, "dbfilename")
        keeps = bool(directory and filename and (Path(directory) / filename).exists())
    if not keeps:
        return "no RDB snapshot"
    before = int(info.get("rdb_saves", 0))
    try:
        with store.store_errors():
            client.bgsave(schedule=True)
    except vexc.ResponseError as exc:
        if "already in progress" not in str(exc):
            if _forbidden(exc):
                raise NotPurged(f"BGSAVE refused: {exc}") from exc
            raise PurgeFailed(f"BGSAVE: {exc}") from exc
    while True:
        info = _persistence(client)
        if int(info.get("rdb_saves", 0)) > before and not info["rdb_bgsave_in_progress"]:
            if info["rdb_last_bgsave_status"] != "ok":
                raise PurgeFailed("the RDB snapshot rewrite failed")
            return "RDB snapshot rewritten"
        if time.monotonic() > deadline:
            raise PurgeFailed("the RDB snapshot rewrite did not finish in time")
        time.sleep(0.05)


def store_purge(name: str, *, wait: bool = True) -> dict:
    """Rewrite one store's AOF (and RDB snapshot) so that it holds live data only, then clear its mark up to
    the cutoff the rewrite serves. Raises PurgeFailed (mark kept) or NotPurged (mark dropped, reason said)."""
    client = store.client(on=name)
    deadline = time.monotonic() + REWRITE_TIMEOUT_SECONDS
    with store.store_errors():
        seconds, micros = client.time()
    cutoff = f"{seconds}.{micros:06d}"
    started = time.monotonic()
    line: dict = {"cutoff": cutoff}
    if int(_persistence(client).get("aof_enabled", 0)):
        before = _start_rewrite(client, deadline)
        if not wait:
            return {**line, "state": "rewrite started (not waited for; the next pass confirms it)"}
        line["aof_rewrite_seconds"] = _wait_aof(client, before, deadline)
        if _is_local(name):
            _aof_files_settled(client, time.monotonic() + 10)
        line["aof"] = "rewritten"
    else:
        line["aof"] = "appendonly is off"
    line["rdb"] = _rdb(client, name, deadline)
    line["seconds"] = round(time.monotonic() - started, 3)
    with store.store_errors():
        client.eval(_CLEAR, 1, PENDING_KEY, cutoff)
    line["state"] = "purged"
    return line


# --- Mem0's history files -----------------------------------------------------------------


def history_purge() -> dict:
    """Every history file secured and checkpointed (memadmin/memory/history.py history_file_purge)."""
    files = []
    for path in history_files():
        _renew()
        files.append(history_file_purge(path))
    busy = [f["file"] for f in files if not f["checkpointed"]]
    return {"files": len(files), "vacuumed": [f["file"] for f in files if f["vacuumed"]], "busy": busy}


# --- a run --------------------------------------------------------------------------------


def lead_seconds(last: dict | None) -> float:
    """How long before the due time a purge starts: one beat, twice the last run and a margin, at most half
    the window (the other half is when erasures gather for one rewrite)."""
    return min(window() / 2, interval() + 2 * float((last or {}).get("seconds") or 5) + 5)


def _runs(start: float, end: float | str = "+inf", *, reverse: bool = False, count: int | None = None) -> list[dict]:
    with store.store_errors():
        client = store.client()
        if reverse:
            raw = client.zrevrangebyscore(RUNS_KEY, end, start, start=0, num=count or 1)
        else:
            raw = client.zrangebyscore(RUNS_KEY, start, end, start=0, num=count or 100)
    return [json.loads(item) for item in raw]


def last_run() -> dict | None:
    runs = _runs("-inf", "+inf", reverse=True, count=1)
    return runs[0] if runs else None


def _locked() -> str | None:
    token = uuid.uuid4().hex
    with store.store_errors():
        taken = store.client().set(LOCK_KEY, token, nx=True, ex=LOCK_SECONDS)
    if not taken:
        return None
    _held.update(token=token, renewed=time.monotonic())
    return token


def _renew() -> None:
    if _held and time.monotonic() - _held["renewed"] > LOCK_SECONDS / 6:
        with store.store_errors():
            store.client().eval(_EXTEND, 1, LOCK_KEY, _held["token"], LOCK_SECONDS)
        _held["renewed"] = time.monotonic()


def _unlock(token: str) -> None:
    _held.clear()
    with store.store_errors():
        store.client().eval(_UNLOCK, 1, LOCK_KEY, token)


def _survey() -> tuple[dict[str, dict], list[str]]:
    found, unreachable = {}, []
    for name in store.store_names():
        try:
            pending = _pending(name)
        except StoreUnavailable:
            unreachable.append(name)
            continue
        if pending:
            found[name] = pending
    return found, unreachable


def pending_stores() -> dict[str, dict]:
    """Stores with erasures not yet purged: name -> {first, last} (server times, epoch seconds). A store that
    cannot be asked counts as pending (``{}``): its marks, if any, are still on it."""
    found, unreachable = _survey()
    return {**found, **{name: {} for name in unreachable}}


def purge_due(*, force: bool = False, wait: bool = True) -> dict:
    """The worker's pass (beat, every ``interval()`` s; ``manage.py purge_erasures`` with force): if the first
    pending erasure of any store is due within the lead time (or ``force``), purge every store with a mark and
    every history file. Returns what it did; ``{"ran": False, ...}`` when nothing was due."""
    pending, unreachable = _survey()
    previous = last_run()
    now = time.time()
    if not force:
        if not pending:
            return {"ran": False, "pending": {}, "unreachable": unreachable}
        starts = min(p["first"] for p in pending.values()) + window() - lead_seconds(previous)
        if now < starts:
            return {"ran": False, "pending": pending, "starts_in": round(starts - now, 1)}
    token = _locked()
    if token is None:
        return {"ran": False, "pending": pending, "busy": "another purge is running"}
    try:
        return _run(pending, unreachable, wait=wait)
    finally:
        _unlock(token)


def _run(pending: dict[str, dict], unreachable: list[str], *, wait: bool) -> dict:
    started_at = datetime.now(timezone.utc)
    started = time.monotonic()
    run: dict = {"id": uuid.uuid4().hex, "started_at": started_at.isoformat(), "stores": {}, "complete": True}
    for name in unreachable:  # it may hold marks: this run cannot vouch for it
        run["stores"][name] = {"state": "failed: unreachable; the next pass tries again"}
        run["complete"] = False
    for name in pending:
        try:
            line = store_purge(name, wait=wait)
            if not wait:
                run["complete"] = False
        except NotPurged as exc:
            line = {"state": f"not purged: {exc}"}
            run["complete"] = False
            with store.store_errors():
                store.client(on=name).delete(PENDING_KEY)  # asking again would get the same answer
            logger.error("Erased text may remain on disk on store %s: not purged: %s", name, exc)
        except (PurgeFailed, StoreUnavailable) as exc:
            line = {"state": f"failed: {exc}; the next pass tries again"}
            run["complete"] = False
            logger.warning("Purge of store %s failed: %s", name, exc)
        line["first_erasure"] = pending[name].get("first")
        run["stores"][name] = line
    run["history"] = history_purge()
    if run["history"]["busy"]:
        run["complete"] = False
    run["seconds"] = round(time.monotonic() - started, 3)
    finished_at = datetime.now(timezone.utc)
    run["finished_at"] = finished_at.isoformat()
    if run["complete"]:
        # Every store with erasures pending was rewritten after they happened, and every history file secured:
        # the receipts of erasures made before this run began now say so, with a signed attestation.
        run["receipts_purged"] = receipt_mark_purged(erased_before=started_at, purged_at=finished_at)
    score = started_at.timestamp()
    with store.store_errors():
        client = store.client()
        client.zadd(RUNS_KEY, {json.dumps(run, sort_keys=True): score})
        client.zremrangebyscore(RUNS_KEY, "-inf", score - RUNS_KEPT_DAYS * 86400)
    logger.info("Erasure purge: %s", json.dumps(run, sort_keys=True))
    return {"ran": True, **run}


def purge_status(*, erased_at: datetime) -> tuple[datetime, datetime | None]:
    """When text erased at ``erased_at`` is due to leave the disk, and when it did (None: not yet, or a store
    refused the rewrite so it may never).

    ``erased_at`` must be when the deletion had finished (a receipt's verified_at), not when it was asked for:
    a purge that started in between did not serve it. The answer covers every store of MEMADMIN_STORES and the
    history files: it is the end of the first complete run (every marked store rewritten and read back, every
    history file checkpointed) that started after ``erased_at``. An erasure whose mark was served by a run
    that started a moment before ``erased_at`` (the mark is written before the receipt's time is taken) is
    answered by that run once nothing is pending any more. Times are this machine's clock against the purging
    worker's: keep them in sync (NTP). Runs are kept RUNS_KEPT_DAYS days; older erasures answer with the oldest
    run kept, which is later than the real purge, never earlier."""
    if erased_at.tzinfo is None:
        raise ValueError("erased_at must be timezone-aware")
    due = erased_at + timedelta(seconds=window())
    for run in _runs(erased_at.timestamp(), count=1000):
        if _refused(run):
            return due, None
        if run.get("complete"):
            return due, datetime.fromisoformat(run["finished_at"])
        # a failed or unconfirmed run kept its marks: a later one serves this erasure
    if pending_stores():
        return due, None
    before = _runs("-inf", erased_at.timestamp(), reverse=True, count=1)
    if before and before[0].get("complete"):
        return due, datetime.fromisoformat(before[0]["finished_at"])
    return due, None


def _refused(run: dict) -> bool:
    return any(line.get("state", "").startswith("not purged") for line in run.get("stores", {}).values())
