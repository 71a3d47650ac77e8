"""One JSON error shape for every API failure.

``{"error": {"code", "message", "field"}, "detail": message}``: ``detail`` is
what mem0.MemoryClient reads into its exception message, ``error`` is the
stable, machine-readable part.
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from memadmin.memory import errors as memory_errors
from memadmin.memory.collections import note_state
from tenants.api.throttling import auth_failure, auth_lock_wait
from tenants.http import client_ip

logger = logging.getLogger("memadmin.api")


class Gone(exceptions.APIException):
    """The app was offboarded: its memories were deleted on purpose and it accepts nothing."""

    status_code = status.HTTP_410_GONE
    default_code = "gone"
    default_detail = "This app was offboarded."


_MEMORY_CODES = {
    memory_errors.ValidationError: "validation_error",
    memory_errors.NotFound: "not_found",
    memory_errors.PermissionDenied: "permission_denied",
    memory_errors.Conflict: "conflict",
    memory_errors.AppPaused: "app_paused",
    memory_errors.StoreUnavailable: "store_unavailable",
    memory_errors.StoreRefusesWrites: "store_refuses_writes",
    memory_errors.IncompleteDeletion: "incomplete_deletion",
}


def error_body(code: str, message: str, field: str | None = None, **extra) -> dict:
    return {"error": {"code": code, "message": message, "field": field, **extra}, "detail": message}


def _flatten(detail, prefix: str = "") -> list[tuple[str | None, str]]:
    """DRF's nested validation detail as (field path, message) pairs."""
    if isinstance(detail, dict):
        pairs = []
        for key, value in detail.items():
            name = None if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else str(key))
            pairs += _flatten(value, name or prefix)
        return pairs
    if isinstance(detail, list):
        pairs = []
        for index, value in enumerate(detail):
            nested = isinstance(value, (dict, list))
            pairs += _flatten(value, f"{prefix}[{index}]" if nested and prefix else prefix)
        return pairs
    return [(prefix or None, str(detail))]


def _memory_error(exc: memory_errors.MemoryServiceError) -> Response:
    code = _MEMORY_CODES.get(type(exc), "error")
    if isinstance(exc, memory_errors.StoreUnavailable):
        note_state(logger, "api-store", exc.message, f"Memory store unavailable: {exc.message}")
    status_code = exc.status
    if isinstance(exc, memory_errors.IncompleteDeletion):
        status_code = 503  # nothing crashed: the store kept something; retrying is the remedy
    extra = {k: v for k, v in exc.details.items() if k != "field" and isinstance(v, (str, int, float, bool))}
    return Response(error_body(code, exc.message, getattr(exc, "field", None), **extra), status=status_code)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, memory_errors.MemoryServiceError):
        return _memory_error(exc)
    refused = memory_errors.disk_full(exc)  # the Django database's own writes (audit rows, jobs, sessions)
    if refused is not None:
        return _memory_error(refused)
    if isinstance(exc, exceptions.NotAuthenticated):
        try:
            exc = _count_anonymous(context["request"], exc)
        except memory_errors.StoreUnavailable as unavailable:  # the failure counters live on the store
            return _memory_error(unavailable)
    response = exception_handler(exc, context)  # Http404, PermissionDenied, Throttled (+Retry-After), ...
    if response is None:
        return None  # a real bug: let Django log it
    if isinstance(exc, exceptions.ValidationError):
        pairs = _flatten(exc.detail)
        message = "; ".join(f"{name}: {text}" if name else text for name, text in pairs) or "Invalid request."
        response.data = error_body("validation_error", message, pairs[0][0] if pairs else None)
        return response
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else code
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
    message = str(detail)
    if isinstance(exc, exceptions.Throttled):
        message = f"Rate limit exceeded: retry in {exc.wait:.0f} seconds." if exc.wait else "Rate limit exceeded."
    if isinstance(exc, exceptions.NotAuthenticated):
        message = "Authentication required: send 'Authorization: Token <api key>'."
    response.data = error_body(code, message)
    return response


def _count_anonymous(request, exc):
    """A request with no credentials at all counts against its address like a wrong key does."""
    ip = client_ip(request)
    wait = auth_lock_wait(ip=ip)
    if wait:
        return exceptions.Throttled(wait)
    auth_failure(ip=ip)
    return exc


# --- Django's own error pages, for API paths ------------------------------------------------
# Errors that happen outside a DRF view (an unknown path, a body Django refused, a bug that escaped
# the view) reach Django's handler404/400/500; on an API path they must still answer in this shape.

API_PREFIXES = ("/v1/", "/v2/", "/v3/", "/api/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def _json(code: str, message: str, status_code: int) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_path(request.path):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return _json("request_too_large", "The request body is too large.", 413)
    return _json("bad_request", "The request could not be understood.", 400)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_path(request.path):
        return defaults.page_not_found(request, exception)
    return _json("not_found", "No such API endpoint.", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    if not is_api_path(request.path):
        return defaults.server_error(request)
    # The traceback goes to the log (Django logged it before calling us), never to the client.
    return _json("server_error", "Internal server error: the failure was logged.", 500)


class NotSupported(exceptions.APIException):
    """A Mem0 platform feature memadmin deliberately does not offer: 400 naming the client method and why."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "not_supported"

    def __init__(self, method: str, why: str):
        super().__init__(f"{method}: not supported by memadmin: {why}", code="not_supported")


class MailUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "mail_unavailable"
