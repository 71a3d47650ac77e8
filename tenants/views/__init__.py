"""Dashboard views (one module per area) and the health check."""

import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from memadmin.memory.collections import disk_status, note_state, other_stores_status, store_status
from memadmin.memory.errors import StoreUnavailable

logger = logging.getLogger("memadmin.health")


@require_GET
def healthz(request) -> JsonResponse:
    """200 when both the database and the memory store answer, else 503 naming what is down: a load
    balancer takes a worker that can reach neither out of rotation (no authentication, no personal data).
    With MEMADMIN_STORES, each other store's state too ("degraded" when one is unreachable).

    "degraded" (still 200) too when the store refuses writes (its persistence failing, a read-only replica) or
    the data dir's disk is nearly full: reads still work, and every worker would say the same, so taking them
    all out of rotation would only stop the reads as well. Monitoring alerts on the body's status."""
    body: dict = {"status": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        body["database"] = "ok"
        note_state(logger, "database", "ok", "Health check: the database answers again.")
    except DatabaseError as exc:
        # The reason (host, credentials) goes to the log, not to an unauthenticated caller.
        note_state(logger, "database", "unreachable", f"Health check: the database is unreachable: {exc}")
        body["status"], body["database"] = "unavailable", "unreachable"
    try:
        body["store"] = store_status()
        note_state(logger, "store", "ok", "Health check: the memory store answers again.")
    except StoreUnavailable as exc:
        note_state(logger, "store", "unreachable", f"Health check: {exc.message}")
        body["status"], body["store"] = "unavailable", "unreachable"
    writes = body["store"]["writes"] if isinstance(body["store"], dict) else "ok"
    note_state(logger, "store-writes", writes, f"Health check: the memory store's writes: {writes}")
    body["disk"] = disk_status()
    note_state(
        logger,
        "disk",
        "low" if body["disk"]["low"] else "ok",
        f"Health check: {body['disk']['free_bytes']} bytes free in the data dir",
    )
    if body["status"] == "ok" and (writes != "ok" or body["disk"]["low"]):
        body["status"] = "degraded"
    # The other stores (MEMADMIN_STORES) only hold some apps: one of them down is "degraded", still 200, since
    # every worker would see it and a load balancer taking them all out would stop every other app too.
    others = other_stores_status()
    if others:
        body["stores"] = others
        if body["status"] == "ok" and "unreachable" in others.values():
            down = ", ".join(name for name, state in others.items() if state != "ok")
            note_state(logger, "other-stores", down, f"Health check: memory stores unreachable: {down}")
            body["status"] = "degraded"
    return JsonResponse(body, status=503 if body["status"] == "unavailable" else 200)
