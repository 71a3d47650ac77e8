"""Where the request log is written: a middleware around every request that, for an API request a key
authenticated, inserts one row after the response is ready.

A plain INSERT, measured (bench/request_log.py, docs/api.md "Request log"): about what the audit row of a read
costs, a small share of the request itself, so no buffer or queue that a crash could lose or the worker would
have to drain. A failing write is logged and never fails the request it describes.

What is kept: the time, the key (prefix and name, never the secret), the method, the path with the names of the
query-string parameters only (their values can carry text: a search query, a user's words), the status, the
latency, the client address (tenants/http.client_ip) and the one app the request named or reached. Never a
body, a header or a memory's text.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from datetime import timedelta
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from tenants.api.errors import is_api_path
from tenants.http import client_ip
from tenants.models import TenantAPIKey
from tenants.request_log.context import RequestApps, current_apps
from tenants.request_log.models import PATH_MAX, APIRequest

logger = logging.getLogger("memadmin.request_log")

# A query-string name is kept only when it looks like a parameter name; anything else could be text.
_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,40}")
PRUNE_BATCH = 5000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def logged_path(request: HttpRequest) -> str:
    """The path, then the query string's parameter names with their values left out: ``?user_id=…&page=…``."""
    names = []
    for name, _ in parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True):
        names.append(f"{name if _NAME.fullmatch(name) else '…'}=…")
    path = request.path + (f"?{'&'.join(names)}" if names else "")
    # Control characters as their %XX: a hostile id's NUL byte is text no PostgreSQL column takes.
    path = _CONTROL.sub(lambda m: f"%{ord(m.group()):02X}", path)
    return path if len(path) <= PATH_MAX else path[: PATH_MAX - 1] + "…"


def _key(request: HttpRequest) -> TenantAPIKey | None:
    key = getattr(request, "auth", None)  # DRF sets it on the Django request too, once the key is checked
    return key if isinstance(key, TenantAPIKey) else None


def record_api_requests(get_response):
    def middleware(request: HttpRequest) -> HttpResponse:
        if not is_api_path(request.path):
            return get_response(request)
        started = time.perf_counter()
        token = current_apps.set(RequestApps())
        try:
            response = get_response(request)
            apps = current_apps.get()
        finally:
            current_apps.reset(token)
        latency_ms = (time.perf_counter() - started) * 1000
        key = _key(request)
        if key is not None:
            _write(request, response, key=key, app_id=apps.app_id(), latency_ms=latency_ms)
        return response

    return middleware


def _address(value: str | None) -> str | None:
    """An address the column can hold: a server on a unix socket hands over no IP (PostgreSQL's inet refuses it)."""
    try:
        return value if value and ipaddress.ip_address(value) else None
    except ValueError:
        return None


def _write(request: HttpRequest, response: HttpResponse, *, key, app_id: str, latency_ms: float) -> None:
    try:
        # A savepoint: a row the database refuses must not break a transaction the request runs in.
        with transaction.atomic():
            APIRequest.objects.create(
                tenant_id=key.tenant_id,
                key=key,
                key_prefix=key.prefix,
                key_name=key.name,
                app_id=app_id[:64],
                method=request.method[:8],
                path=logged_path(request),
                status=response.status_code,
                latency_ms=round(latency_ms, 2),
                client_ip=_address(client_ip(request)),
            )
    except DatabaseError as exc:
        logger.warning("API request not logged (%s %s): %s", request.method, request.path, exc)


def request_log_prune(*, now=None) -> int:
    """Rows older than MEMADMIN_REQUEST_LOG_DAYS leave the log (the job sweep, every beat), in batches so
    a backlog never holds the database's write lock for long."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.MEMADMIN_REQUEST_LOG_DAYS)
    deleted = 0
    while True:
        batch = list(APIRequest.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:PRUNE_BATCH])
        if not batch:
            return deleted
        deleted += APIRequest.objects.filter(pk__in=batch).delete()[0]
