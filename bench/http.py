"""HTTP under concurrency against the production setup: gunicorn workers, DEBUG off, 127.0.0.1 only.

Every URL the bench requests is in ROUTES (one place): if a route 404s, the
result says so instead of measuring an error page.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from bench.load import APPS, QUERIES, Dataset
from bench.measure import percentiles

REPO = Path(__file__).resolve().parent.parent
ADD_USER = "bench_http_add"

# {tenant}, {user}, {query} are filled per request. "auth": session (staff cookie) or key (Token header).
ROUTES = {
    "browser_full": {"method": "GET", "path": "/t/{tenant}/memories/?user_id={user}", "auth": "session"},
    "browser_partial": {
        "method": "GET",
        "path": "/t/{tenant}/memories/?user_id={user}",
        "auth": "session",
        "headers": {"HX-Request": "true"},
    },
    "api_get_all": {
        "method": "POST",
        "path": "/v3/memories/?page=1&page_size=50",
        "auth": "key",
        "body": {"filters": {"user_id": "{user}"}},
    },
    # One user in one app, as the in-process Memory.search it is compared with (one collection); without
    # app_id the gateway searches each of the tenant's apps (one KNN per app) and merges.
    "api_search": {
        "method": "POST",
        "path": "/v3/memories/search/",
        "auth": "key",
        "body": {"query": "{query}", "filters": {"AND": [{"user_id": "{user}"}, {"app_id": "{app}"}]}, "top_k": 10},
    },
    # One new memory per request, no LLM: embed + HSET + Mem0's history row + the audit row.
    # Written to a user of its own, erased after the measure, so the store stays the loaded N.
    "api_add": {
        "method": "POST",
        "path": "/v3/memories/add/",
        "auth": "key",
        "body": {
            "messages": [{"role": "user", "content": "{query} (note {i})"}],
            "user_id": ADD_USER,
            "app_id": "{app}",
            "infer": False,
        },
    },
}


class Gunicorn:
    """What ``manage.py serve`` runs (memadmin/gunicorn_conf.py: gthread workers, the embedder loaded at
    start), on a free port, with the access log off; workers and threads as given, else serve's defaults."""

    def __init__(self, workers: int | None, threads: int | None, log: Path, torch_threads: int | None = None):
        from memadmin.memory.embedded import free_port

        self.port = free_port()
        self.workers, self.threads = workers, threads
        self.log = log
        self.torch_threads = torch_threads
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        cmd = [sys.executable, "-m", "gunicorn", "-c", "python:memadmin.gunicorn_conf"]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.log, "ab")
        env = dict(
            os.environ,
            MEMADMIN_BIND=f"127.0.0.1:{self.port}",
            MEMADMIN_ACCESS_LOG="off",
            LOG_LEVEL="warning",
            MEMADMIN_WEB_TIMEOUT="120",
            MEMADMIN_WEB_GRACEFUL_TIMEOUT="5",
        )
        if self.workers:
            env["MEMADMIN_WEB_WORKERS"] = str(self.workers)
        if self.threads:
            env["MEMADMIN_WEB_THREADS"] = str(self.threads)
        if self.torch_threads:
            env["MEMADMIN_EMBEDDER_THREADS"] = str(self.torch_threads)
        self.process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._fh, stderr=self._fh)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log}")
            try:
                status, _, _ = request(self.port, "GET", "/healthz", {}, None, timeout=2)
                if status < 500 and len(self.worker_pids()) >= (self.workers or 1):
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"gunicorn did not answer within 120s; see {self.log}")

    def worker_pids(self) -> list[int]:
        import psutil

        return [child.pid for child in psutil.Process(self.process.pid).children(recursive=True)]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the master and its workers so far."""
        import psutil

        total = 0.0
        for pid in [self.process.pid, *self.worker_pids()]:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._fh.close()


class CpuMeter:
    """Where a measure's CPU went: this process (the load generator, or Mem0 in-process), the server's
    processes, and Valkey (INFO cpu). Per request, so runs of different lengths compare."""

    def __init__(self, server: Gunicorn | None = None):
        self.server = server

    def _now(self) -> dict:
        from memadmin.memory import store

        info = store.client().info("cpu")
        out = {
            "this_process": time.process_time(),
            "valkey": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        }
        if self.server is not None:
            out["server"] = self.server.cpu_seconds()
        return out

    def __enter__(self):
        self.start = self._now()
        return self

    def __exit__(self, *exc):
        self.end = self._now()

    def per_call_ms(self, calls: int) -> dict:
        if not calls:
            return {}
        return {name: round((self.end[name] - self.start[name]) * 1000 / calls, 2) for name in self.start}


def request(port: int, method: str, path: str, headers: dict, body: bytes | None, timeout: float = 60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data, response.getheader("Content-Type", "")
    finally:
        conn.close()


def staff_session_cookie(ds: Dataset) -> str:
    """A real session row for the bench's staff admin: what a POST to the login page would have created."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from bench.load import staff_membership

    user = staff_membership(ds).user
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def _fill(value, values: dict):
    if isinstance(value, str):
        return value.format(**values)
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


class Client:
    def __init__(self, port: int, ds: Dataset, cookie: str, key: str, keepalive: bool = False):
        self.port, self.ds, self.cookie, self.key = port, ds, cookie, key
        self.users = ds.heavy_user_ids()
        self._local = threading.local()
        # Off by default: docs/deploying.md's nginx (like nginx's default proxy) opens a connection per request to
        # gunicorn. Kept-alive connections stay with the worker that accepted them (--http-keepalive).
        self.keepalive = keepalive

    def build(self, route: dict, i: int):
        values = {
            "tenant": self.ds.slug,
            "user": self.users[i % len(self.users)],
            "query": QUERIES[i % len(QUERIES)],
            "app": APPS[0][0],
            "i": str(i),
        }
        path = route["path"].format(
            tenant=quote(values["tenant"]), user=quote(values["user"]), query=quote(values["query"])
        )
        headers = {"Host": "127.0.0.1", **route.get("headers", {})}
        if route["auth"] == "session":
            headers["Cookie"] = self.cookie
        else:
            headers["Authorization"] = f"Token {self.key}"
        body = None
        if "body" in route:
            body = json.dumps(_fill(route["body"], values)).encode()
            headers["Content-Type"] = "application/json"
        return route["method"], path, headers, body

    def one(self, route: dict, i: int):
        """One request, on a new connection or on this thread's kept-alive one (a connection the server
        closed while idle is opened again, once)."""
        method, path, headers, body = self.build(route, i)
        t0 = time.perf_counter_ns()
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.will_close or not self.keepalive:
                    self.close()
                return (time.perf_counter_ns() - t0) / 1e6, response.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt == 2:
                    return (time.perf_counter_ns() - t0) / 1e6, 0, str(exc).encode()
            except OSError as exc:
                self.close()
                return (time.perf_counter_ns() - t0) / 1e6, 0, str(exc).encode()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def run_level(client: Client, route: dict, concurrency: int, total: int, max_seconds: float) -> dict:
    """total requests (fewer if max_seconds runs out) from `concurrency` threads."""
    lock = threading.Lock()
    counter = iter(range(total))
    results: list[tuple[float, int, bytes]] = []
    deadline = time.perf_counter() + max_seconds

    def worker():
        try:
            while time.perf_counter() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                result = client.one(route, i)
                with lock:
                    results.append(result)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    statuses = Counter(status for _, status, _ in results)
    errors = [r for r in results if not 200 <= r[1] < 300]
    out = {
        "concurrency": concurrency,
        "requests": len(results),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(results) / elapsed, 1) if elapsed else None,
        "errors": len(errors),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        # a page that is suddenly tiny is an error page or an empty result, not a fast one
        "mean_response_bytes": round(sum(len(r[2]) for r in results) / len(results)) if results else 0,
        **percentiles([r[0] for r in results]),
    }
    if errors:
        out["first_error"] = errors[0][2][:300].decode(errors="replace")
    return out


def inprocess_mem0(ds: Dataset, *, seconds: float, torch_threads: int | None) -> dict:
    """The engine floor for the HTTP search and add: Mem0's own Memory.search / Memory.add(infer=False) on the
    same collection, called in this process, one thread, with the workers' torch threads. Pure Mem0: its own
    Memory and its own embedder, built from the config the service gives it, not the service's handles.
    Per core: what one core does with no HTTP, no auth, no scope, no audit."""
    import torch
    from mem0 import Memory

    from bench.load import staff_membership
    from memadmin.memory import index, store
    from tenants.scoping import scope_for_membership

    scope = scope_for_membership(staff_membership(ds), ip="127.0.0.1")
    place = next(a.place for a in scope.apps if a.app_id == APPS[0][0])
    index.ensure(place)
    before = torch.get_num_threads()
    if torch_threads:
        torch.set_num_threads(torch_threads)
    memory = Memory.from_config(store.mem0_config(place))
    users = ds.heavy_user_ids()

    def rate(fn) -> dict:
        for i in range(5):  # first calls per input shape are slow
            fn(i)
        latencies, i, deadline = [], 0, time.perf_counter() + seconds
        with CpuMeter() as cpu:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter_ns()
                fn(i)
                latencies.append((time.perf_counter_ns() - t0) / 1e6)
                i += 1
        return {
            "calls_per_s": round(len(latencies) / (sum(latencies) / 1000), 1),
            **percentiles(latencies),
            "cpu_ms_per_call": cpu.per_call_ms(len(latencies)),
        }

    try:
        search = rate(
            lambda i: memory.search(QUERIES[i % len(QUERIES)], filters={"user_id": users[i % len(users)]}, top_k=10)
        )
        add = rate(
            lambda i: memory.add(
                [{"role": "user", "content": f"{QUERIES[i % len(QUERIES)]} (inproc {i})"}],
                user_id=ADD_USER,
                infer=False,
            )
        )
    finally:
        torch.set_num_threads(before)
        memory.db.close()
    return {"mem0_search": search, "mem0_add_infer_false": add, "threads": torch_threads or before}


def erase_add_user(ds: Dataset) -> dict:
    """What the add measures wrote goes again, through the service's own verified erasure."""
    from bench.load import staff_membership
    from memadmin.memory.filters import filter_from_fields
    from memadmin.memory.services import memory_delete_matching
    from tenants.scoping import scope_for_membership

    scope = scope_for_membership(staff_membership(ds), ip="127.0.0.1")
    result = memory_delete_matching(scope=scope, filters=filter_from_fields(user_id=ADD_USER), audit=False)
    if result.deferred:  # more than the synchronous limit: the same engine, run here to the end
        from memadmin.memory import bulk

        bulk.matching_drop(
            scope=scope,
            filters=filter_from_fields(user_id=ADD_USER),
            cursor={},
            progress=lambda cursor: None,
            batch_size=1000,
            scan_fallback=False,
            journal=False,
        )
    return {"deleted": result.deleted, "deferred": result.deferred}


def throughput_ratios(out: dict, cores_used: int) -> dict:
    """HTTP requests/s at c=8 (the smoke run's highest level) over (in-process calls/s x cores the workers can use):
    the price of the gateway. Beside it, where the CPU went per request (the server's processes, Valkey, and
    the load generator, which shares the machine's cores with the server) and per in-process call."""
    ratios = {}
    for route, base in (("api_search", "mem0_search"), ("api_add", "mem0_add_infer_false")):
        levels = (out.get(route) or {}).get("levels") or {}
        concurrency = "8" if "8" in levels else max(levels, key=int, default=None)
        level = levels.get(concurrency) or {}
        floor = (out.get("inprocess") or {}).get(base, {})
        if level.get("requests_per_s") and floor.get("calls_per_s"):
            cpu, cpu_floor = level.get("cpu_ms_per_request") or {}, floor.get("cpu_ms_per_call") or {}
            ratios[route] = {
                "concurrency": int(concurrency),
                "http_requests_per_s": level["requests_per_s"],
                "http_p50_ms": level.get("p50_ms"),
                "inprocess_calls_per_s_per_core": floor["calls_per_s"],
                "cores_used": cores_used,
                "ratio_per_core": round(level["requests_per_s"] / (floor["calls_per_s"] * cores_used), 3),
                "http_cpu_ms_per_request": {
                    "server": cpu.get("server"),
                    "valkey": cpu.get("valkey"),
                    "load_generator": cpu.get("this_process"),
                },
                "inprocess_cpu_ms_per_call": {"mem0": cpu_floor.get("this_process"), "valkey": cpu_floor.get("valkey")},
            }
            # Per core the work actually kept busy: CPU per in-process call over CPU per request (server,
            # Valkey and the load generator, which the in-process loop does not need).
            http_cpu = sum(v or 0 for v in ratios[route]["http_cpu_ms_per_request"].values())
            floor_cpu = sum(v or 0 for v in ratios[route]["inprocess_cpu_ms_per_call"].values())
            if http_cpu and floor_cpu:
                ratios[route]["ratio_per_core_busy"] = round(floor_cpu / http_cpu, 3)
    return ratios


def profile_requests(ds: Dataset, routes: dict, cookie: str, key: str, profile_dir: Path, reps: int = 30) -> dict:
    """pyinstrument over whole requests in this process (middleware, auth, DRF, the service, Valkey, the template):
    where a request's time goes, beside the per-service profiles."""
    from django.test import Client as DjangoClient
    from pyinstrument import Profiler

    client = Client(0, ds, cookie, key)
    django_client = DjangoClient(HTTP_HOST="127.0.0.1")
    paths = {}
    for name, route in routes.items():

        def call(i, route=route):
            method, path, headers, body = client.build(route, i)
            extra = {
                "HTTP_" + k.upper().replace("-", "_"): v
                for k, v in headers.items()
                if k not in ("Host", "Content-Type")
            }
            return django_client.generic(method, path, data=body or b"", content_type="application/json", **extra)

        for i in range(3):
            call(i)
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for i in range(reps):
            call(i)
        profiler.stop()
        profile_dir.mkdir(parents=True, exist_ok=True)
        path = profile_dir / f"profile-http-{name}-n{ds.n}.txt"
        path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        paths[name] = str(path)
    return paths


def measure_http(
    ds: Dataset,
    *,
    workers: int | None,
    threads: int | None,
    levels: list[int],
    requests_per_level: int,
    max_seconds: float,
    log: Path,
    routes: dict | None = None,
    torch_threads: int | None = None,
    baseline_seconds: float = 10.0,
    profile_dir: Path | None = None,
    keepalive: bool = False,
) -> dict:
    from bench.load import api_key

    routes = routes or ROUTES
    cookie = staff_session_cookie(ds)
    key = api_key(ds)
    # Before the server starts: the floor is measured on an otherwise idle machine, like the server.
    inprocess = inprocess_mem0(ds, seconds=baseline_seconds, torch_threads=torch_threads)
    out: dict = {}
    cores_used = os.cpu_count() or 1
    try:
        with Gunicorn(workers, threads, log, torch_threads) as server:
            workers = len(server.worker_pids())
            cores_used = min(workers, os.cpu_count() or 1)
            out["server"] = {
                "kind": "gunicorn gthread (memadmin/gunicorn_conf.py, as manage.py serve)",
                "workers": workers,
                "threads": threads or "serve's default",
                "debug": False,
                "bind": "127.0.0.1",
                "embedder_threads": torch_threads,
                "embedder_batch": os.environ.get("MEMADMIN_EMBEDDER_BATCH", "default"),
                "connections": "kept alive per client thread"
                if keepalive
                else "one per request (as nginx opens them to gunicorn)",
            }
            out["inprocess"] = inprocess
            client = Client(server.port, ds, cookie, key, keepalive=keepalive)
            for name, route in routes.items():
                latency, status, data = client.one(route, 0)
                if status == 404:
                    out[name] = {"status": "route not found (404)", "path": route["path"]}
                    continue
                if not 200 <= status < 300:
                    out[name] = {
                        "status": f"probe answered {status}",
                        "path": route["path"],
                        "body": data[:300].decode(errors="replace"),
                    }
                    continue
                # Warm every worker's threads and code paths before measuring.
                run_level(client, route, workers * 4, workers * 8, max_seconds=120)
                out[name] = {"path": route["path"], "first_request_ms": round(latency, 1), "levels": {}}
                for concurrency in levels:
                    total = max(requests_per_level, concurrency * 4)
                    with CpuMeter(server) as cpu:
                        level = run_level(client, route, concurrency, total, max_seconds)
                    # this_process = the load generator; server = gunicorn's processes; valkey = the store
                    level["cpu_ms_per_request"] = cpu.per_call_ms(level["requests"])
                    out[name]["levels"][str(concurrency)] = level
        if profile_dir is not None:
            out["profiles"] = profile_requests(ds, routes, cookie, key, profile_dir)
    finally:
        out["add_cleanup"] = erase_add_user(ds)
    out["throughput_vs_inprocess"] = throughput_ratios(out, cores_used)
    return out
