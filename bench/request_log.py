"""What the API request log's write adds to an API request (tenants/request_log/recording.py), in one run.

In-process, through Django's whole middleware stack (django.test.Client: no socket, so the request's own cost
is as small as it gets and the write's share as large as it gets). Per route, rep by rep, interleaved so the
machine's load falls on all three alike:

- the request with the log on (as deployed),
- the same request with the log's write switched off (the middleware still runs, the INSERT does not); which
  of the two goes first alternates from rep to rep,
- the write alone: the same INSERT the middleware makes, timed by itself.

Reported: p50/p95 of each, and the write's p50 as a share of the request's p50 (``write_share``) plus the
difference between the request with and without the log (``on_minus_off_p50_ms``, noisier: two medians of
whole requests).
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager, nullcontext

from bench.load import Dataset, api_key
from bench.measure import percentiles

ROUTES = {
    # The cheapest authenticated API request: the write's largest share.
    "ping": {"method": "get", "path": "/v1/ping/"},
    # A typical read: one user's first page (as bench/http.py's api_get_all).
    "get_all": {"method": "post", "path": "/v3/memories/?page=1&page_size=50", "body": "user"},
}


@contextmanager
def _log_switched_off():
    from tenants.request_log import recording

    write = recording._write
    recording._write = lambda *args, **kwargs: None
    try:
        yield
    finally:
        recording._write = write


def _insert(key) -> None:
    """The row the middleware writes for a request, written the same way."""
    from tenants.request_log.models import APIRequest

    APIRequest.objects.create(
        tenant_id=key.tenant_id,
        key=key,
        key_prefix=key.prefix,
        key_name=key.name,
        app_id="",
        method="POST",
        path="/v3/memories/?page=…&page_size=…",
        status=200,
        latency_ms=12.5,
        client_ip="127.0.0.1",
    )


def measure_request_log(ds: Dataset, *, reps: int = 200, budget_s: float = 20.0) -> dict:
    from django.test import Client

    from tenants.models import TenantAPIKey
    from tenants.request_log.models import APIRequest

    secret = api_key(ds)
    key = TenantAPIKey.objects.get_from_key(secret)
    client = Client(headers={"Authorization": f"Token {secret}"}, HTTP_HOST="127.0.0.1")
    user = ds.heavy_user_ids()[0]
    out: dict = {"how": "in-process django.test.Client, whole middleware stack; interleaved reps"}

    def call(route) -> int:
        if route.get("body"):
            body = json.dumps({"filters": {"user_id": user}})
            response = getattr(client, route["method"])(route["path"], body, content_type="application/json")
        else:
            response = getattr(client, route["method"])(route["path"])
        return response.status_code

    for name, route in ROUTES.items():
        status = call(route)
        if status != 200:
            out[name] = {"status": f"probe answered {status}", "path": route["path"]}
            continue
        for _ in range(5):  # warm-up: connections, caches, the scope's queries
            call(route)
            _insert(key)
        on, off, write = [], [], []
        deadline = time.perf_counter() + budget_s
        for rep in range(reps):
            # Which of the two goes first alternates: neither gets the other's after-effects every time.
            for log_on in (True, False) if rep % 2 == 0 else (False, True):
                with nullcontext() if log_on else _log_switched_off():
                    t0 = time.perf_counter_ns()
                    call(route)
                    (on if log_on else off).append((time.perf_counter_ns() - t0) / 1e6)
            t0 = time.perf_counter_ns()
            _insert(key)
            write.append((time.perf_counter_ns() - t0) / 1e6)
            if time.perf_counter() > deadline and len(on) >= 5:
                break
        on_p, off_p, write_p = percentiles(on), percentiles(off), percentiles(write)
        out[name] = {
            "path": route["path"],
            "request_log_on": on_p,
            "request_log_off": off_p,
            "write_alone": write_p,
            "write_share": round(write_p["p50_ms"] / on_p["p50_ms"], 4),
            "on_minus_off_p50_ms": round(on_p["p50_ms"] - off_p["p50_ms"], 3),
        }
    out["rows_written"] = APIRequest.objects.filter(key=key).count()
    APIRequest.objects.filter(key=key).delete()  # the bench's rows leave the bench's own database
    return out
