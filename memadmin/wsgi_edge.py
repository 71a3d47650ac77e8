"""What the WSGI server hands over, made whole and bounded before Django sees it.

gunicorn refuses some requests itself, before any application runs (a request line over its limit, too many or
too large header fields). Its limits are set far above ours (memadmin/gunicorn_conf.py, which also gives its own
refusals the JSON shape), so the same requests meet ours here, answered with the API's one error shape
(``{"error": {"code", "message", "field"}, "detail"}``, tenants/api/errors.py) on the API's paths.

A body sent with ``Transfer-Encoding: chunked`` has no Content-Length; gunicorn decodes the chunks and hands
them over as ``wsgi.input`` without ``CONTENT_LENGTH``, and Django reads a body of length 0 (a valid add
answered "messages: This field is required"). It is read here, up to the request body limit, and given its
length.
"""

from __future__ import annotations

import io
import json

from django.conf import settings

# The request line's URI (path and query string, as sent) and the header fields Django is handed at most.
MAX_URI_BYTES = 8000
MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_BYTES = 8190
API_PREFIXES = ("/v1/", "/v2/", "/v3/", "/api/")
_CODES = {
    413: ("request_too_large", "Request Entity Too Large"),
    414: ("uri_too_long", "URI Too Long"),
    431: ("request_header_fields_too_large", "Request Header Fields Too Large"),
}


def refuse(environ, start_response, status: int, message: str):
    code, reason = _CODES[status]
    if environ.get("PATH_INFO", "").startswith(API_PREFIXES):
        body = json.dumps({"error": {"code": code, "message": message, "field": None}, "detail": message}).encode()
        content_type = "application/json"
    else:
        body, content_type = f"{message}\n".encode(), "text/plain; charset=utf-8"
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ],
    )
    return [body]


def _oversize(environ) -> tuple[int, str] | None:
    uri = environ.get("RAW_URI") or environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")
    if len(uri) > MAX_URI_BYTES:
        return 414, f"The request URI is over {MAX_URI_BYTES} bytes: send long filters in a POST body."
    fields = {
        name: value
        for name, value in environ.items()
        if name.startswith("HTTP_") or name in ("CONTENT_TYPE", "CONTENT_LENGTH")
    }
    if len(fields) > MAX_HEADER_FIELDS:
        return 431, f"The request has over {MAX_HEADER_FIELDS} header fields."
    for name, value in fields.items():
        if len(name) + len(str(value)) > MAX_HEADER_FIELD_BYTES:
            header = name.removeprefix("HTTP_").replace("_", "-").title()
            return 431, f"The request header {header} is over {MAX_HEADER_FIELD_BYTES} bytes."
    return None


def edge(application):
    """The WSGI application behind the checks above."""

    def wsgi(environ, start_response):
        refused = _oversize(environ)
        if refused is not None:
            return refuse(environ, start_response, *refused)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            body = environ["wsgi.input"].read(limit + 1 if limit is not None else -1)
            if limit is not None and len(body) > limit:
                return refuse(environ, start_response, 413, f"The request body is over {limit} bytes.")
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return application(environ, start_response)

    return wsgi
