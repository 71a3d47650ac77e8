"""Requests whose ids cannot be read as sent are refused before any view sees them."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, HttpResponse, JsonResponse

from memadmin.middleware import RAW_PATH
from tenants.api.errors import error_body, is_api_path
from tenants.views.common import render_error

FORM = "application/x-www-form-urlencoded"


def _text(raw: bytes) -> bool:
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _bad_pair(raw: bytes) -> tuple[bool, str | None]:
    """Whether a query string or form body holds bytes that are no UTF-8, and under which name if readable."""
    for pair in raw.split(b"&"):
        key, _, value = pair.partition(b"=")
        if not _text(key):
            return True, None
        if not _text(value):
            return True, unquote_to_bytes(key.replace(b"+", b" ")).decode("utf-8")
    return False, None


def _wsgi_bytes(value: str) -> bytes | None:
    # WSGI hands the raw bytes over as latin-1 text; a server that decoded them already has nothing to check.
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _path_is_text(request: HttpRequest) -> bool:
    raw_path = getattr(request, "scope", {}).get("raw_path")  # ASGI: still escaped
    path = unquote_to_bytes(raw_path) if raw_path is not None else _wsgi_bytes(request.META.get(RAW_PATH, ""))
    try:
        (path or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _undecodable(request: HttpRequest) -> tuple[str, str | None] | None:
    if not _path_is_text(request):
        return "address", None
    query = _wsgi_bytes(request.META.get("QUERY_STRING", ""))
    if query:
        bad, field = _bad_pair(query)
        if bad:
            return "query string", field
    if request.content_type == FORM and request.method not in ("GET", "HEAD"):
        bad, field = _bad_pair(request.body)
        if bad:
            return "form", field
    return None


def utf8_only(get_response):
    """Bytes that are no UTF-8 (``%ff``, a lone ``%c3``, an overlong or surrogate sequence) are a 400.

    Django decodes query strings and form bodies with errors="replace" and re-escapes such bytes in the path,
    so ``user_id=%ff`` would reach a view as the valid id "\\ufffd" (``DELETE /v1/memories/?user_id=%ff``
    answered "deleted 0") and ``/users/%ff/`` as the literal id "%FF": another id than the one sent, never an
    error. Listed last, so the dashboard's error page has its user, messages and HTMX details."""

    def middleware(request: HttpRequest) -> HttpResponse:
        found = _undecodable(request)
        if found is None:
            return get_response(request)
        where, field = found
        message = (
            f"The request's {where} is not valid UTF-8{f' (in {field})' if field else ''}: a %-escape "
            "such as %ff encodes no character. Ids and text must be valid Unicode, percent-encoded as "
            "UTF-8."
        )
        if is_api_path(request.path):
            return JsonResponse(error_body("invalid_encoding", message, field), status=400)
        return render_error(request, 400, message)

    return middleware
