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

from bench.load import QUERIES, Dataset
from bench.measure import percentiles

REPO = Path(__file__).resolve().parent.parent

# {tenant}, {user}, {query} are filled per request. "auth": session (staff cookie) or key (Token header).
ROUTES = {
    "browser_full": {"method": "GET", "path": "/t/{tenant}/memories/?user_id={user}", "auth": "session"},
    "browser_partial": {"method": "GET", "path": "/t/{tenant}/memories/?user_id={user}", "auth": "session",
                        "headers": {"HX-Request": "true"}},
    "api_get_all": {"method": "POST", "path": "/v3/memories/?page=1&page_size=50", "auth": "key",
                    "body": {"filters": {"user_id": "{user}"}}},
    "api_search": {"method": "POST", "path": "/v3/memories/search/", "auth": "key",
                   "body": {"query": "{query}", "filters": {"user_id": "{user}"}, "top_k": 10}},
}  # fmt: skip


class Gunicorn:
    def __init__(self, workers: int, log: Path, torch_threads: int | None = None):
        from memadmin.memory.embedded import free_port

        self.port = free_port()
        self.workers = workers
        self.log = log
        self.torch_threads = torch_threads
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        cmd = [
            sys.executable, "-m", "gunicorn", "memadmin.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
            "--timeout", "120", "--graceful-timeout", "5", "--log-level", "warning",
        ]  # fmt: skip
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.log, "ab")
        env = dict(os.environ)
        if self.torch_threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.torch_threads)
        self.process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._fh, stderr=self._fh)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log}")
            try:
                status, _, _ = request(self.port, "GET", "/healthz", {}, None, timeout=2)
                if status < 500:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"gunicorn did not answer within 60s; see {self.log}")

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._fh.close()


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
    return value


class Client:
    def __init__(self, port: int, ds: Dataset, cookie: str, key: str):
        self.port, self.ds, self.cookie, self.key = port, ds, cookie, key
        self.users = ds.heavy_user_ids()

    def build(self, route: dict, i: int):
        values = {"tenant": self.ds.slug, "user": self.users[i % len(self.users)], "query": QUERIES[i % len(QUERIES)]}
        path = route["path"].format(tenant=quote(values["tenant"]), user=quote(values["user"]),
                                    query=quote(values["query"]))  # fmt: skip
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
        method, path, headers, body = self.build(route, i)
        t0 = time.perf_counter_ns()
        try:
            status, data, _ = request(self.port, method, path, headers, body)
        except OSError as exc:
            return (time.perf_counter_ns() - t0) / 1e6, 0, str(exc).encode()
        return (time.perf_counter_ns() - t0) / 1e6, status, data


def run_level(client: Client, route: dict, concurrency: int, total: int, max_seconds: float) -> dict:
    """total requests (fewer if max_seconds runs out) from `concurrency` threads; each request a new connection."""
    lock = threading.Lock()
    counter = iter(range(total))
    results: list[tuple[float, int, bytes]] = []
    deadline = time.perf_counter() + max_seconds

    def worker():
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            result = client.one(route, i)
            with lock:
                results.append(result)

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


def measure_http(ds: Dataset, *, workers: int, levels: list[int], requests_per_level: int, max_seconds: float,
                 log: Path, routes: dict | None = None, torch_threads: int | None = None) -> dict:  # fmt: skip
    from bench.load import api_key

    routes = routes or ROUTES
    cookie = staff_session_cookie(ds)
    key = api_key(ds)
    out: dict = {"server": {"kind": "gunicorn sync", "workers": workers, "debug": False, "bind": "127.0.0.1",
                            "omp_num_threads": torch_threads}}  # fmt: skip
    with Gunicorn(workers, log, torch_threads) as server:
        client = Client(server.port, ds, cookie, key)
        for name, route in routes.items():
            latency, status, data = client.one(route, 0)
            if status == 404:
                out[name] = {"status": "route not found (404)", "path": route["path"]}
                continue
            if not 200 <= status < 300:
                out[name] = {"status": f"probe answered {status}", "path": route["path"],
                             "body": data[:300].decode(errors="replace")}  # fmt: skip
                continue
            # Warm every worker (the embedder loads lazily, once per worker) before measuring.
            run_level(client, route, workers, workers * 2, max_seconds=120)
            out[name] = {"path": route["path"], "first_request_ms": round(latency, 1), "levels": {}}
            for concurrency in levels:
                total = max(requests_per_level, concurrency * 4)
                out[name]["levels"][str(concurrency)] = run_level(client, route, concurrency, total, max_seconds)
    return out
