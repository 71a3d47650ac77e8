"""Offboarding benchmark: drop an app of N memories through the job machinery, against Mem0's one-by-one delete.

``run_offboard_bench(n)`` expects Django configured (bench.env.configure) and returns a dict:
memories/s of the offboard job run by a real worker process, that worker's peak RSS, and the
rate of mem0 ``Memory.delete(id)`` on a sample of the same kind of memories (the baseline a
Mem0 user has), with the ratio. Importing this module does nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

DIMS = 384
CHUNK = 1000
EPOCH = 1_735_689_600


def load_memories(
    client,
    collection: str,
    n: int,
    *,
    users: int = 50,
    agents: int = 5,
    runs: int = 200,
    dims: int = DIMS,
    seed: int = 0,
    history: bool = True,
    history_path: Path | None = None,
    start: int = 0,
) -> int:
    """Write n memories in Mem0's hash layout (random unit vectors), pipelined; optionally one Mem0 history
    row each and a few chat messages, in the collection's Mem0 history DB. Returns n."""
    rng = np.random.default_rng(seed + start)
    connection = None
    if history and history_path is not None:
        history_path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(history_path)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS history (id TEXT PRIMARY KEY, memory_id TEXT, old_memory TEXT, "
            "new_memory TEXT, event TEXT, created_at DATETIME, updated_at DATETIME, is_deleted INTEGER, "
            "actor_id TEXT, role TEXT)"
        )
        connection.execute(
            "CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, session_scope TEXT, role TEXT, "
            "content TEXT, name TEXT, created_at DATETIME)"
        )
    for offset in range(start, start + n, CHUNK):
        size = min(CHUNK, start + n - offset)
        vectors = rng.standard_normal((size, dims)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        pipe = client.pipeline(transaction=False)
        rows, messages = [], []
        for i in range(size):
            k = offset + i
            memory_id = str(uuid.UUID(int=rng.integers(0, 2**63) << 64 | k))
            user, agent, run = f"user-{k % users}", f"agent-{k % agents}", f"run-{k % runs}"
            created = EPOCH - (k * 97) % (365 * 86400)
            pipe.hset(
                f"mem0:{collection}:{memory_id}",
                mapping={
                    "memory_id": memory_id,
                    "hash": f"h{k}",
                    "memory": f"memory number {k} of {user}",
                    "created_at": created,
                    "user_id": user,
                    "agent_id": agent,
                    "run_id": run,
                    "metadata": json.dumps({"n": k}),
                    "embedding": vectors[i].tobytes(),
                },
            )
            if connection is not None:
                rows.append(
                    (
                        str(uuid.uuid4()),
                        memory_id,
                        None,
                        f"memory number {k}",
                        "ADD",
                        "2025-01-01T00:00:00+00:00",
                        None,
                        0,
                        None,
                        None,
                    )
                )
                if k < runs:
                    messages.append(
                        (
                            str(uuid.uuid4()),
                            f"agent_id={agent}&run_id={run}&user_id={user}",
                            "user",
                            f"message {k}",
                            None,
                            "2025-01-01T00:00:00+00:00",
                        )
                    )
        pipe.execute()
        if connection is not None:
            with connection:
                connection.executemany("INSERT INTO history VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
                connection.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?)", messages)
    if connection is not None:
        connection.close()
    return n


def _tree_rss(process) -> int:
    import psutil

    try:
        procs = [process, *process.children(recursive=True)]
        return max(p.memory_info().rss for p in procs)
    except psutil.Error:
        return 0


def _throwaway_app(tenant, app_id: str):
    from tenants.models import App

    return App.objects.create(tenant=tenant, app_id=app_id, name=app_id)


def _baseline(tenant, sample: int) -> dict:
    """What a Mem0 user has: Memory.delete(id), one call per memory (it also writes a history row)."""
    from django.conf import settings

    from memadmin.memory import index, store

    app = _throwaway_app(tenant, f"baseline_{uuid.uuid4().hex[:8]}")
    index.ensure(app.app_ref().place)
    load_memories(
        store.client(),
        app.collection_name,
        sample,
        dims=settings.MEMADMIN_EMBEDDER_DIMS,
        seed=1,
        history_path=store.history_db_path(app.collection_name),
    )
    memory = index.mem0(app.app_ref().place)  # loads Mem0 (and its embedder) before the clock starts
    ids = [
        index.memory_id_of(app.collection_name, k)
        for k in store.client().scan_iter(match=f"{store.key_prefix(app.collection_name)}*", count=1000)
    ]
    started = time.perf_counter()
    for memory_id in ids:
        memory.delete(memory_id)
    seconds = time.perf_counter() - started
    return {"sample": len(ids), "seconds": round(seconds, 3), "rate": round(len(ids) / seconds, 1)}


def run_offboard_bench(n: int, *, baseline_sample: int = 2000, timeout: float = 3600.0) -> dict:
    """Offboard a throwaway app of n memories with a real worker process (python manage.py worker)."""
    import psutil
    from django.conf import settings

    from memadmin.memory import index, store
    from tenants.jobs.models import Job
    from tenants.jobs.services import job_offboard_app
    from tenants.models import Tenant
    from tenants.scoping import scope_for_job

    slug = f"bench-offboard-{uuid.uuid4().hex[:6]}"
    tenant = Tenant.objects.create(name=slug, slug=slug)
    app = _throwaway_app(tenant, "offboard_me")
    index.ensure(app.app_ref().place)
    started = time.perf_counter()
    load_memories(
        store.client(),
        app.collection_name,
        n,
        dims=settings.MEMADMIN_EMBEDDER_DIMS,
        history_path=store.history_db_path(app.collection_name),
    )
    load_seconds = time.perf_counter() - started

    env = {**os.environ, "VALKEY_URL": store.valkey_url(), "MEMADMIN_DATA_DIR": str(settings.DATA_DIR)}
    repo = Path(__file__).resolve().parents[1]
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--concurrency", "1", "--no-beat", "--loglevel", "WARNING"],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    proc = psutil.Process(worker.pid)
    peak = idle = 0
    try:
        time.sleep(3)
        idle = _tree_rss(proc)
        scope = scope_for_job(Job(tenant=tenant, requested_by="bench"))
        job, _ = job_offboard_app(scope=scope, app_id="offboard_me", grace_hours=0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            peak = max(peak, _tree_rss(proc))
            job.refresh_from_db()
            if job.state in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.1)
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(30)
    if job.state != "succeeded":
        raise RuntimeError(f"offboard job {job.state}: {job.error}")
    seconds = (job.finished_at - job.started_at).total_seconds()
    totals = job.receipt["totals"]
    result = {
        "n": n,
        "load_seconds": round(load_seconds, 1),
        "offboard_seconds": round(seconds, 3),
        "offboard_rate": round(totals["memories"] / seconds, 1),
        "deleted": totals["memories"],
        "history_rows": totals["history_rows"],
        "remaining": job.receipt["remaining"],
        "worker_idle_rss_mb": round(idle / 2**20, 1),
        "worker_peak_rss_mb": round(peak / 2**20, 1),
        "batch_size": settings.MEMADMIN_JOB_BATCH_SIZE,
        "index_algorithm": settings.MEMADMIN_INDEX_ALGORITHM,
    }
    baseline = _baseline(tenant, min(n, baseline_sample))
    result["baseline"] = baseline
    result["ratio"] = round(result["offboard_rate"] / baseline["rate"], 1)
    return result
