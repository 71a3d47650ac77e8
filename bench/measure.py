"""In-process measures: service layer vs its baseline (raw FT.SEARCH / FT.AGGREGATE, or Mem0), in one run."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.load import APPS, QUERIES, Dataset


def engine_tail() -> tuple[str, ...]:
    """What the index layer appends to every FT.SEARCH / FT.AGGREGATE (memadmin/memory/index_queries.ft): the same
    engine timeout, so a raw baseline is not cut short (ON_TIMEOUT FAIL) where the service is not."""
    from django.conf import settings

    return ("TIMEOUT", str(settings.MEMADMIN_QUERY_TIMEOUT_MS), "DIALECT", "2")


def percentiles(samples_ms: list[float]) -> dict:
    arr = np.asarray(samples_ms, dtype=float)
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p95_ms": round(float(np.percentile(arr, 95)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
        "mean_ms": round(float(arr.mean()), 3),
        "min_ms": round(float(arr.min()), 3),
        "reps": len(arr),
    }


def timed(fn: Callable[[int], object], *, warmup: int, reps: int, budget_s: float) -> dict:
    """p50/p95/p99 of fn(i) after warm-up; stops early (never below 5 reps) when the time budget is spent."""
    for i in range(warmup):
        fn(i)
    samples = []
    deadline = time.perf_counter() + budget_s
    for i in range(reps):
        t0 = time.perf_counter_ns()
        fn(i)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        if len(samples) >= 5 and time.perf_counter() > deadline:
            break
    return percentiles(samples)


def ratio(ours: dict, base: dict, key: str = "p50_ms") -> float | None:
    return round(ours[key] / base[key], 3) if base.get(key) else None


class Context:
    """What every measure needs: the dataset, a staff scope, app refs, a raw client."""

    def __init__(self, ds: Dataset, raw, *, reps: int, budget_s: float, profile_dir: Path | None = None):
        from bench.load import staff_membership
        from tenants.scoping import scope_for_membership

        self.ds = ds
        self.memories = ds.n  # what the store holds: less than N when measured as an interrupted load left it
        self.raw = raw
        self.reps = reps
        self.budget_s = budget_s
        self.warmup = max(3, reps // 10)
        self.membership = staff_membership(ds)
        self.scope = scope_for_membership(self.membership, ip="127.0.0.1")
        self.apps = {app.app_id: app for app in self.scope.apps}
        self.main_app = self.apps[APPS[0][0]]
        self.heavy = ds.heavy_user_ids()
        self.typical = ds.typical_user_ids()
        self.profile_dir = profile_dir
        self.query_count = len(QUERIES) if reps >= 50 else 4  # smoke: a few queries are enough not to rot

    def profile(self, name: str, fn: Callable[[int], object], reps: int = 30) -> str | None:
        """pyinstrument text profile of reps calls, saved beside the results."""
        if self.profile_dir is None:
            return None
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        for i in range(reps):
            fn(i)
        profiler.stop()
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        path = self.profile_dir / f"profile-{name}-n{self.ds.n}.txt"
        path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        return str(path)


_RETURN = ("memory_id", "hash", "memory", "user_id", "agent_id", "run_id", "metadata", "created_at", "updated_at")


def _raw_browse(ctx: Context, collection: str, user: str, size: int = 50):
    return ctx.raw.execute_command(
        "FT.SEARCH",
        collection,
        f"@user_id:{{{user}}}",
        "SORTBY",
        "created_at",
        "DESC",
        "LIMIT",
        "0",
        str(size),
        "RETURN",
        str(len(_RETURN)),
        *_RETURN,
        *engine_tail(),
    )


def measure_browse(ctx: Context) -> dict:
    """Newest 50 of one user: memory_list vs the FT.SEARCH calls the engine needs for the same page."""
    from memadmin.memory.filters import filter_from_fields
    from memadmin.memory.selectors import memory_list

    out = {}
    collections = [app.collection for app in sorted(ctx.scope.apps, key=lambda a: a.app_id)]
    main = ctx.main_app
    cases = {
        # heavy user (~1k memories) across the tenant's 3 apps: 3 FT.SEARCH + merge
        "browse_user_all_apps": (ctx.heavy, None, collections),
        # the same user in one app: exactly one FT.SEARCH
        "browse_user_one_app": (ctx.heavy, main.app_id, [main.collection]),
        # a typical user (~10 memories)
        "browse_typical_user": (ctx.typical, None, collections),
    }
    for name, (users, app_id, colls) in cases.items():

        def service(i, users=users, app_id=app_id, audit=True):
            page = memory_list(
                scope=ctx.scope,
                filters=filter_from_fields(user_id=users[i % len(users)], app_id=app_id),
                page_size=50,
                audit=audit,
            )
            return page

        def raw(i, users=users, colls=colls):
            for collection in colls:
                _raw_browse(ctx, collection, users[i % len(users)])

        check = service(0)
        ours = timed(service, warmup=ctx.warmup, reps=ctx.reps, budget_s=ctx.budget_s)
        base = timed(raw, warmup=ctx.warmup, reps=ctx.reps, budget_s=ctx.budget_s)
        no_audit = timed(lambda i, s=service: s(i, audit=False), warmup=2, reps=ctx.reps, budget_s=ctx.budget_s)
        out[name] = {
            "service": ours,
            "raw_ft_search": base,
            "service_no_audit": no_audit,
            "ratio_vs_raw": ratio(ours, base),
            "matches": check.total,
            "returned": len(check.items),
        }
        prof = ctx.profile(name, service)
        if prof:
            out[name]["profile"] = prof
    return out


def measure_counts(ctx: Context) -> dict:
    """memory_counts for one user (end-user page) and for the whole tenant (overview), vs raw FT.AGGREGATE."""
    from memadmin.memory.filters import EVERYTHING, filter_from_fields
    from memadmin.memory.selectors import memory_counts

    collections = [app.collection for app in ctx.scope.apps]

    def raw(query: str):
        # The engine commands memory_counts needs for the same answer, sent straight through the client.
        def run(i):
            for collection in collections:
                ctx.raw.execute_command("FT.SEARCH", collection, query, "LIMIT", "0", "0", *engine_tail())
                ctx.raw.execute_command(
                    "FT.AGGREGATE",
                    collection,
                    query,
                    "GROUPBY",
                    "1",
                    "@agent_id",
                    "REDUCE",
                    "COUNT",
                    "0",
                    "AS",
                    "n",
                    *engine_tail(),
                )
                ctx.raw.execute_command(
                    "FT.AGGREGATE",
                    collection,
                    query,
                    "GROUPBY",
                    "1",
                    "@user_id",
                    "REDUCE",
                    "COUNT",
                    "0",
                    "AS",
                    "n",
                    "SORTBY",
                    "2",
                    "@n",
                    "DESC",
                    "MAX",
                    "30",
                    *engine_tail(),
                )
                ctx.raw.execute_command(
                    "FT.AGGREGATE",
                    collection,
                    query,
                    "GROUPBY",
                    "0",
                    "REDUCE",
                    "COUNT_DISTINCT",
                    "1",
                    "@user_id",
                    "AS",
                    "d",
                    *engine_tail(),
                )

        return run

    out = {}
    users = ctx.heavy
    user_service = lambda i: memory_counts(scope=ctx.scope, filters=filter_from_fields(user_id=users[i % 3]))  # noqa: E731
    ours = timed(user_service, warmup=ctx.warmup, reps=ctx.reps, budget_s=ctx.budget_s)
    base = timed(
        lambda i: raw(f"@user_id:{{{users[i % 3]}}}")(i), warmup=ctx.warmup, reps=ctx.reps, budget_s=ctx.budget_s
    )
    out["counts_user"] = {"service": ours, "raw_ft_aggregate": base, "ratio_vs_raw": ratio(ours, base)}

    tenant_service = lambda i: memory_counts(scope=ctx.scope, filters=EVERYTHING)  # noqa: E731
    check = tenant_service(0)
    expected_users = distinct_users(ctx.ds)  # people, not people x apps: one person in three apps counts once
    reps = max(5, ctx.reps // 10)
    ours = timed(tenant_service, warmup=1, reps=reps, budget_s=ctx.budget_s)
    base = timed(raw("*"), warmup=1, reps=reps, budget_s=ctx.budget_s)
    out["counts_tenant"] = {
        "service": ours,
        "raw_ft_aggregate": base,
        "ratio_vs_raw": ratio(ours, base),
        # the engine's TIMEOUT (500 ms, ON_TIMEOUT return) can silently truncate an aggregate: check the answer
        "total": check.total,
        "users_counted": check.users,
        "agents_counted": check.agents,
        "users_expected": expected_users,
        "correct": check.total == ctx.ds.n and check.users == expected_users and check.agents == 20,
    }
    prof = ctx.profile("counts_tenant", tenant_service, reps=3)
    if prof:
        out["counts_tenant"]["profile"] = prof
    return out


def distinct_users(ds: Dataset) -> int:
    """Ground truth from the generator itself (deterministic per chunk), independent of the engine."""
    from bench.load import CHUNK, make_chunk

    seen: set[str] = set()
    for index in range((ds.n + CHUNK - 1) // CHUNK):
        seen.update(make_chunk(ds, index).users)
    return len(seen)


def measure_search(ctx: Context) -> dict:
    """Semantic search, user filter, top_k 10, query embedding included: memory_search vs mem0 Memory.search."""
    from memadmin.memory import index
    from memadmin.memory.filters import filter_from_fields
    from memadmin.memory.selectors import memory_search

    main = ctx.main_app
    users = ctx.heavy
    mem0 = index.mem0(main.place)
    pairs = list(itertools.product(QUERIES, users))
    pairs = [pairs[(i * 7) % len(pairs)] for i in range(len(pairs))]

    def service_one(i):
        query, user = pairs[i % len(pairs)]
        return memory_search(
            scope=ctx.scope, query=query, filters=filter_from_fields(user_id=user, app_id=main.app_id), top_k=10
        )

    def service_all(i):
        query, user = pairs[i % len(pairs)]
        return memory_search(scope=ctx.scope, query=query, filters=filter_from_fields(user_id=user), top_k=10)

    def hybrid_one(i):
        query, user = pairs[i % len(pairs)]
        return memory_search(
            scope=ctx.scope,
            query=query,
            filters=filter_from_fields(user_id=user, app_id=main.app_id),
            top_k=10,
            keyword_search=True,
        )

    def baseline(i):
        query, user = pairs[i % len(pairs)]
        return mem0.search(query, filters={"user_id": user}, top_k=10)

    def embed_only(i):
        return index.embed(main.place, pairs[i % len(pairs)][0])

    # Every query once through each path first: the model's first call per input shape is slow.
    for i, query in enumerate(QUERIES[: ctx.query_count]):
        index.embed(main.place, query)
        service_one(i)
        baseline(i)
    out = {}
    ours = timed(service_one, warmup=ctx.warmup, reps=ctx.reps, budget_s=ctx.budget_s)
    try:
        base = timed(baseline, warmup=ctx.warmup, reps=ctx.reps, budget_s=ctx.budget_s)
        base_error = None
    except Exception as exc:  # noqa: BLE001 - a broken baseline is reported, not fatal
        base, base_error = {}, f"{type(exc).__name__}: {exc}"
    out["search_user_one_app"] = {"service": ours, "mem0_search": base, "ratio_vs_mem0": ratio(ours, base)}
    if base_error:
        out["search_user_one_app"]["mem0_error"] = base_error
    # The dashboard's search: the same plus the words' full-text query (up to 100 matches with their vectors).
    hybrid = timed(hybrid_one, warmup=ctx.warmup, reps=ctx.reps, budget_s=ctx.budget_s)
    out["search_user_one_app_hybrid"] = {"service": hybrid, "ratio_vs_vector": ratio(hybrid, ours)}
    ours_all = timed(service_all, warmup=ctx.warmup, reps=ctx.reps, budget_s=ctx.budget_s)
    out["search_user_all_apps"] = {"service": ours_all, "ratio_vs_mem0_one_app": ratio(ours_all, base)}
    out["embed_query_only"] = timed(embed_only, warmup=ctx.warmup, reps=ctx.reps, budget_s=ctx.budget_s)
    out["search_quality"] = search_quality(ctx, service_one, pairs)
    prof = ctx.profile("search_user_one_app", service_one)
    if prof:
        out["search_user_one_app"]["profile"] = prof
    return out


def search_quality(ctx: Context, service_one, pairs) -> dict:
    """recall@10 of the HNSW answer against exact cosine over all of that user's vectors in that app."""
    from memadmin.memory import index

    main = ctx.main_app
    recalls = []
    vectors_by_user = {}
    for user in ctx.heavy:
        reply = ctx.raw.execute_command(
            "FT.SEARCH",
            main.collection,
            f"@user_id:{{{user}}}",
            "LIMIT",
            "0",
            "10000",
            "RETURN",
            "2",
            "memory_id",
            "embedding",
            *engine_tail(),
        )
        ids, vecs = [], []
        for i in range(1, len(reply) - 1, 2):
            fields = dict(zip(reply[i + 1][::2], reply[i + 1][1::2]))
            ids.append(fields[b"memory_id"].decode())
            vecs.append(np.frombuffer(fields[b"embedding"], dtype=np.float32))
        matrix = np.vstack(vecs)
        vectors_by_user[user] = (ids, matrix / np.linalg.norm(matrix, axis=1, keepdims=True))
    sample = pairs[: ctx.query_count]
    for i, (query, user) in enumerate(sample):
        q = np.asarray(index.embed(main.place, query), dtype=np.float32)
        ids, matrix = vectors_by_user[user]
        exact = {ids[j] for j in np.argsort(-(matrix @ (q / np.linalg.norm(q))))[:10]}
        got = {r.id for r in service_one(i)}
        recalls.append(len(exact & got) / len(exact))
    return {
        "recall_at_10_mean": round(float(np.mean(recalls)), 4),
        "queries": len(sample),
        "candidates_per_user": {u: len(v[0]) for u, v in vectors_by_user.items()},
    }


# --- export, in a subprocess so its peak RSS is its own ---------------------------------------


def measure_export(ctx: Context, env_data_dir: Path) -> dict:
    main = ctx.main_app
    cases = {
        "export_user": ["--user", ctx.heavy[0]],
        "export_app": ["--app", main.app_id],
    }
    out = {}
    for name, extra in cases.items():
        for mode in ("service", "raw_cursor"):
            out.setdefault(name, {})[mode] = run_export_probe(ctx.ds, env_data_dir, extra + ["--mode", mode])
        service, raw = out[name]["service"], out[name]["raw_cursor"]
        if service.get("memories_per_s") and raw.get("memories_per_s"):
            out[name]["ratio_vs_raw"] = round(raw["memories_per_s"] / service["memories_per_s"], 3)
    return out


def run_export_probe(ds: Dataset, data_dir: Path, args: list[str]) -> dict:
    import psutil

    cmd = [
        sys.executable,
        "-m",
        "bench.export_probe",
        "--data-dir",
        str(data_dir),
        "--n",
        str(ds.n),
        "--seed",
        str(ds.seed),
        *args,
    ]
    env = dict(os.environ)
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.01)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        return {"error": stderr.decode(errors="replace")[-2000:]}
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    result["peak_rss_mb_sampled"] = round(peak / 2**20, 1)
    return result
