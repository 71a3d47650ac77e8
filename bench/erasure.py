"""Erasure at scale: per-person deletions beside their raw floor, and the consistency monitor
(its own section, ``monitor``, beside its floor: an unthrottled SCAN of the same prefix).

Every measured deletion removes memories written for it just before (fresh user, run and memory ids in
Mem0's hash layout, one history row each), so the loaded dataset stays intact for the other sections and
the store keeps its size N. Each service figure has its floor measured in the same run on the same kind
of victim: FT.SEARCH of exactly those keys + UNLINK + the SQLite history delete.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from contextlib import closing

import numpy as np

from bench.load import APPS
from bench.measure import Context, engine_tail, percentiles, ratio

HISTORY_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS history (id TEXT PRIMARY KEY, memory_id TEXT, old_memory TEXT, new_memory TEXT, "
    "event TEXT, created_at DATETIME, updated_at DATETIME, is_deleted INTEGER, actor_id TEXT, role TEXT)"
)


class Victims:
    """Writes fresh memories for one erasure; the dims and layout are Mem0's."""

    def __init__(self, ctx: Context, dims: int):
        self.ctx, self.dims = ctx, dims
        self.rng = np.random.default_rng(4242)
        self.apps = [ctx.apps[a] for a, _ in APPS]

    def write(self, user: str, per_app: list[int], run_id: str | None = None) -> dict[str, list[str]]:
        from memadmin.memory import store

        written: dict[str, list[str]] = {}
        now = int(time.time())
        for app, count in zip(self.apps, per_app):
            if not count:
                continue
            vectors = self.rng.standard_normal((count, self.dims)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ids = [str(uuid.uuid4()) for _ in range(count)]
            pipe = self.ctx.raw.pipeline(transaction=False)
            for memory_id, vector in zip(ids, vectors):
                fields = {
                    "memory_id": memory_id,
                    "hash": memory_id[:8],
                    "memory": f"erasure victim {user}",
                    "user_id": user,
                    "agent_id": "eraser",
                    "created_at": now,
                    "embedding": vector.tobytes(),
                }
                if run_id:
                    fields["run_id"] = run_id
                pipe.hset(f"{store.key_prefix(app.collection)}{memory_id}", mapping=fields)
            pipe.execute()
            path = store.history_db_path(app.collection)
            with closing(sqlite3.connect(path)) as db, db:
                db.execute(HISTORY_SCHEMA)
                db.executemany(
                    "INSERT INTO history VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [(str(uuid.uuid4()), i, None, "victim", "ADD", "2026-01-01", None, 0, None, None) for i in ids],
                )
            written[app.collection] = ids
        return written


def _floor(raw, written: dict[str, list[str]], query: str) -> int:
    """What an erasure cannot do without: find exactly those keys, UNLINK them, delete their history rows."""
    from memadmin.memory import store

    deleted = 0
    for collection in written:
        reply = raw.execute_command("FT.SEARCH", collection, query, "NOCONTENT", "LIMIT", "0", "10000", *engine_tail())
        keys = reply[1:]
        if keys:
            deleted += raw.unlink(*keys)
        ids = [k.decode().rsplit(":", 1)[-1] for k in keys]
        with closing(sqlite3.connect(store.history_db_path(collection))) as db, db:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                db.execute(f"DELETE FROM history WHERE memory_id IN ({','.join('?' * len(chunk))})", chunk)
    return deleted


def _pair(ctx: Context, victims: Victims, per_app: list[int], name: str, reps: int, *, run: bool = False) -> dict:
    """Service vs floor, interleaved rep by rep so both see the same machine load."""
    from memadmin.memory import services
    from memadmin.memory.filters import filter_from_fields, render

    service_ms, floor_ms, deleted = [], [], 0
    deadline = time.perf_counter() + ctx.budget_s * 3
    for i in range(reps):
        tag = f"{name}-{uuid.uuid4().hex[:10]}"
        user, run_id = (f"erasure-user-{tag}", f"erasure-run-{tag}" if run else None)
        victims.write(user, per_app, run_id)
        filters = filter_from_fields(run_id=run_id) if run else filter_from_fields(user_id=user)
        t0 = time.perf_counter_ns()
        result = services.memory_delete_matching(scope=ctx.scope, filters=filters)
        service_ms.append((time.perf_counter_ns() - t0) / 1e6)
        assert result.deferred is None and result.remaining == 0, result
        deleted += result.deleted
        user2 = f"erasure-floor-{tag}"
        run2 = f"erasure-floor-run-{tag}" if run else None
        written = victims.write(user2, per_app, run2)
        query = render(filter_from_fields(run_id=run2) if run else filter_from_fields(user_id=user2))
        t0 = time.perf_counter_ns()
        floor_deleted = _floor(ctx.raw, written, query)
        floor_ms.append((time.perf_counter_ns() - t0) / 1e6)
        assert floor_deleted == sum(per_app), (floor_deleted, per_app)
        if i >= 4 and time.perf_counter() > deadline:
            break
    service, floor = percentiles(service_ms), percentiles(floor_ms)
    per_erasure = sum(per_app)
    return {
        "memories_per_erasure": per_erasure,
        "service": service,
        "floor": floor,
        "ratio_vs_floor": ratio(service, floor),
        "service_memories_per_s": round(per_erasure / (service["p50_ms"] / 1000), 1),
        "floor_memories_per_s": round(per_erasure / (floor["p50_ms"] / 1000), 1),
    }


def _one_memory(ctx: Context, victims: Victims, reps: int) -> dict:
    from memadmin.memory import index, services, store

    index.mem0(ctx.main_app.place)  # Mem0 and its embedder load before the clock starts
    service_ms, floor_ms = [], []
    for _ in range(reps):
        written = victims.write(f"erasure-one-{uuid.uuid4().hex[:8]}", [1, 0, 0])
        memory_id = next(iter(written.values()))[0]
        t0 = time.perf_counter_ns()
        result = services.memory_delete(scope=ctx.scope, memory_id=memory_id, app_id=ctx.main_app.app_id)
        service_ms.append((time.perf_counter_ns() - t0) / 1e6)
        assert result.remaining == 0
        written = victims.write(f"erasure-one-floor-{uuid.uuid4().hex[:8]}", [1, 0, 0])
        collection, (memory_id,) = next(iter(written.items()))
        t0 = time.perf_counter_ns()
        ctx.raw.unlink(f"{store.key_prefix(collection)}{memory_id}")
        with closing(sqlite3.connect(store.history_db_path(collection))) as db, db:
            db.execute("DELETE FROM history WHERE memory_id = ?", (memory_id,))
        floor_ms.append((time.perf_counter_ns() - t0) / 1e6)
    service, floor = percentiles(service_ms), percentiles(floor_ms)
    return {"service": service, "floor": floor, "ratio_vs_floor": ratio(service, floor)}


MONITOR_SCRIPT = """
import json, sys, time
import django
django.setup()
from memadmin.memory.consistency import consistency_check
from memadmin.memory.store import Place
print("ready", flush=True)
sys.stdin.readline()  # the parent starts timing browse now: a worker's start-up is no part of the check
started = time.perf_counter()
health = consistency_check(place=Place(sys.argv[2], sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - started, "keys": health.keys, "healthy": health.healthy,
                  "missing": health.missing, "reasons": health.reasons, "mode": health.mode,
                  "fallback": health.fallback}))
"""


def _scan_floor(ctx: Context, batch_size: int) -> dict:
    """What any walk of the app's keys costs: an unthrottled SCAN of its prefix, keys only, same batch size."""
    from memadmin.memory import store

    started, cursor, keys = time.perf_counter(), 0, 0
    while True:
        cursor, batch = ctx.raw.scan(
            cursor=cursor, match=f"{store.key_prefix(ctx.main_app.collection)}*", count=batch_size
        )
        keys += len(batch)
        if not cursor:
            break
    seconds = time.perf_counter() - started
    return {"keys": keys, "seconds": round(seconds, 2), "keys_per_s": round(keys / seconds, 1)}


def measure_monitor(ctx: Context) -> dict:
    """The count-first pass as deployed, then the membership pass alone (MEMADMIN_MONITOR_COUNT_FIRST=0):
    what a pass costs when churn or a difference makes the counts unable to vouch for it."""
    import os

    result = _monitor_run(ctx)
    result["membership_pass"] = _monitor_run(ctx, env={**os.environ, "MEMADMIN_MONITOR_COUNT_FIRST": "0"})
    return result


def _monitor_run(ctx: Context, env: dict | None = None) -> dict:
    """The consistency check of the largest app in its own process (as the worker runs it), keys/s beside
    an unthrottled SCAN of the same prefix; and browse p95 in this process while it runs, against browse
    sampled for the same length of time just before and just after it (other processes share this machine:
    a short quiet sample alone swings with their load)."""
    import inspect
    import json
    import subprocess
    import sys

    from django.conf import settings

    from memadmin.memory import selectors
    from memadmin.memory.consistency import consistency_step
    from memadmin.memory.filters import filter_from_fields

    users = ctx.typical

    def browse(i):
        selectors.memory_list(
            scope=ctx.scope, filters=filter_from_fields(user_id=users[i % len(users)]), page_size=50, audit=False
        )

    def sample(until) -> list[float]:
        samples = []
        while not until():
            t0 = time.perf_counter_ns()
            browse(len(samples))
            samples.append((time.perf_counter_ns() - t0) / 1e6)
        return samples

    def window():
        end = time.perf_counter() + min(5.0, ctx.budget_s)
        return lambda: time.perf_counter() >= end

    batch_size = inspect.signature(consistency_step).parameters["batch_size"].default
    floor = _scan_floor(ctx, batch_size)
    for i in range(ctx.warmup):
        browse(i)
    before = sample(window())
    checker = subprocess.Popen(
        [sys.executable, "-c", MONITOR_SCRIPT, ctx.main_app.collection, ctx.main_app.store],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert checker.stdout.readline().strip() == "ready"
    checker.stdin.write("go\n")
    checker.stdin.flush()
    during = sample(lambda: checker.poll() is not None)
    after = sample(window())
    outcome = json.loads(checker.stdout.read().strip().splitlines()[-1])
    quiet, busy = percentiles(before + after), percentiles(during) if len(during) >= 5 else None
    return {
        "app": ctx.main_app.app_id,
        "keys": outcome["keys"],
        "seconds": round(outcome["seconds"], 2),
        "keys_per_s": round(outcome["keys"] / outcome["seconds"], 1) if outcome["seconds"] else None,
        "healthy": outcome["healthy"],
        "missing": outcome["missing"],
        "reasons": outcome["reasons"],
        "mode": outcome.get("mode"),
        "fallback": outcome.get("fallback"),
        "throttle_keys_per_s": settings.MEMADMIN_MONITOR_KEYS_PER_SECOND,
        "batch_size": batch_size,
        "scan_floor": floor,
        "vs_scan_floor": round(outcome["keys"] / outcome["seconds"] / floor["keys_per_s"], 3)
        if outcome["seconds"]
        else None,
        "browse_quiet": quiet,
        "browse_quiet_before_p95_ms": percentiles(before)["p95_ms"],
        "browse_quiet_after_p95_ms": percentiles(after)["p95_ms"],
        "browse_during_check": busy,
        "browse_p95_increase": round(busy["p95_ms"] / quiet["p95_ms"] - 1, 3) if busy else None,
    }


def measure_erasure(ctx: Context) -> dict:
    from django.conf import settings

    victims = Victims(ctx, settings.MEMADMIN_EMBEDDER_DIMS)
    reps = max(5, min(ctx.reps, 40))
    heavy_reps = max(3, min(ctx.reps // 10, 8))
    return {
        "typical_user": _pair(ctx, victims, [4, 3, 3], "typical", reps),
        "heavy_user": _pair(ctx, victims, [400, 300, 300], "heavy", heavy_reps),
        "run": _pair(ctx, victims, [10, 0, 0], "run", reps, run=True),
        "one_memory": _one_memory(ctx, victims, reps),
    }


def measure_purge(ctx: Context) -> dict:
    """The disk purge of erased texts (memadmin/memory/purge.py) at this store size: E typical-user erasures, then
    the purge as the worker runs it once due; one AOF rewrite must serve them all. Also what that rewrite costs
    (wall clock of the run, the AOF base it writes) and, from that duration, how erasures at a steady 1,000 an
    hour share rewrites under the configured window (the pass starts a rewrite lead_seconds() before the first
    pending erasure is due and serves every erasure marked before it forks)."""
    from django.conf import settings

    from memadmin.memory import purge, services
    from memadmin.memory.filters import filter_from_fields

    victims = Victims(ctx, settings.MEMADMIN_EMBEDDER_DIMS)
    purge.purge_due(force=True)  # what earlier sections erased is not this section's
    erasures = max(5, min(ctx.reps, 100))
    info = ctx.raw.info("persistence")
    before = int(info["aof_rewrites"])
    mark_ms = []
    for _ in range(erasures):
        user = f"purge-user-{uuid.uuid4().hex[:10]}"
        victims.write(user, [4, 3, 3])
        result = services.memory_delete_matching(scope=ctx.scope, filters=filter_from_fields(user_id=user))
        assert result.deferred is None and result.remaining == 0, result
        t0 = time.perf_counter_ns()
        purge.erasure_mark(on=ctx.main_app.store)  # what each erasure pays for the purge: one script on its store
        mark_ms.append((time.perf_counter_ns() - t0) / 1e6)
    started = time.perf_counter()
    run = purge.purge_due(force=True)
    seconds = time.perf_counter() - started
    info = ctx.raw.info("persistence")
    rewrites = int(info["aof_rewrites"]) - before
    line = run["stores"].get("default", {})
    window = settings.MEMADMIN_ERASURE_PURGE_SECONDS
    lead = purge.lead_seconds({"seconds": seconds})
    period = window - lead + seconds  # erasures from one rewrite's fork to the next: one rewrite each
    return {
        "memories": ctx.memories,
        "erasures": erasures,
        "aof_rewrites": rewrites,
        "erasures_per_rewrite": round(erasures / rewrites, 1) if rewrites else None,
        "complete": run["complete"],
        "store": line.get("state"),
        "aof": line.get("aof"),
        "rdb": line.get("rdb"),
        "run_seconds": round(seconds, 3),
        "store_purge_seconds": line.get("seconds"),
        "aof_base_mb": round(int(info.get("aof_base_size", 0)) / 2**20, 1),
        "history_files": run["history"]["files"],
        "history_vacuumed": len(run["history"]["vacuumed"]),
        "mark": percentiles(mark_ms),
        "at_1000_erasures_per_hour": {
            "window_s": window,
            "lead_s": round(lead, 1),
            "rewrites_per_hour": round(3600 / period, 2),
            "erasures_per_rewrite": round(1000 * period / 3600, 1),
        },
    }
