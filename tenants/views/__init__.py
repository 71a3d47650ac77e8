"""Dashboard views (one module per area) and the health check."""

import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from memadmin.memory.collections import other_stores_status, store_status
from memadmin.memory.errors import StoreUnavailable

logger = logging.getLogger("memadmin.health")


@require_GET
def healthz(request) -> JsonResponse:
    """200 when both the database and the memory store answer, else 503 naming what is down: a load
    balancer takes a worker that can reach neither out of rotation (no authentication, no personal data).
    With MEMADMIN_STORES, each other store's state too ("degraded" when one is unreachable)."""
    body: dict = {"status": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        body["database"] = "ok"
    except DatabaseError as exc:
        # The reason (host, credentials) goes to the log, not to an unauthenticated caller.
        logger.warning("Health check: the database is unreachable: %s", exc)
        body["status"], body["database"] = "unavailable", "unreachable"
    try:
        body["store"] = store_status()
    except StoreUnavailable as exc:
        logger.warning("Health check: %s", exc.message)
        body["status"], body["store"] = "unavailable", "unreachable"
    # The other stores (MEMADMIN_STORES) only hold some apps: one of them down is "degraded", still 200, since
    # every worker would see it and a load balancer taking them all out would stop every other app too.
    others = other_stores_status()
    if others:
        body["stores"] = others
        if body["status"] == "ok" and "unreachable" in others.values():
            logger.warning("Health check: memory stores unreachable: %s",
                           ", ".join(name for name, state in others.items() if state != "ok"))  # fmt: skip
            body["status"] = "degraded"
    return JsonResponse(body, status=503 if body["status"] == "unavailable" else 200)
