"""Dashboard views (one module per area) and the health check."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from memadmin.memory.errors import StoreUnavailable
from memadmin.memory.status import store_status


@require_GET
def healthz(request) -> JsonResponse:
    try:
        return JsonResponse({"status": "ok", "store": store_status()})
    except StoreUnavailable as exc:
        return JsonResponse({"status": "unavailable", "error": exc.message}, status=503)
