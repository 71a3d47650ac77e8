"""Cross-cutting response headers, and the request path as the client sent it."""

import logging
import time

from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers

from memadmin.memory import errors

logger = logging.getLogger("memadmin.health")


def no_store(get_response):
    """Cache-Control: no-store on every dynamic response that does not choose its own caching.

    Nearly every page and API answer carries somebody's memories, a user id or an audit trail,
    and a shared or browser cache must not keep them. Listed below WhiteNoise, which answers
    static files before this runs, so those keep their long-lived caching.
    """

    def middleware(request):
        response = get_response(request)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response

    return middleware


RAW_PATH = "memadmin.raw_path_info"


def keep_raw_path(application):
    """The WSGI application, keeping PATH_INFO as the server gave it (the bytes, as latin-1 text).

    Django rewrites PATH_INFO before any middleware runs, re-escaping bytes that are no UTF-8 (``/%ff/``
    becomes the text ``/%FF/``, which a client could also have sent as ``/%25FF/``): only the original tells
    a broken request from a strange id (tenants/middleware.py)."""

    def wsgi(environ, start_response):
        environ[RAW_PATH] = environ.get("PATH_INFO", "")
        return application(environ, start_response)

    return wsgi


def disk_full(get_response):
    """A full disk is a 503 that says so, not a 500: a write to the Django database (a session, an audit row, a
    job) or a file under the data dir that fails with "database or disk is full" / ENOSPC. The memory service's
    own writes raise StoreRefusesWrites, which the dashboard and the API map themselves."""

    def middleware(request):
        return get_response(request)

    def process_exception(request, exception):
        refused = errors.disk_full(exception)
        if refused is None:
            return None
        logger.error("Disk full while answering %s %s: %s", request.method, request.path, exception)
        body = {
            "error": {
                "code": "store_refuses_writes",
                "message": refused.message,
                "field": None,
                "cause": refused.cause,
            },
            "detail": refused.message,
        }
        return JsonResponse(body, status=503, headers={"Retry-After": "60"})

    middleware.process_exception = process_exception
    return middleware


class Repeated503s(logging.Filter):
    """Django logs every 5xx answer ("Service Unavailable: /path") at ERROR. During an outage that is one line
    per request from every thread of every worker (a dead store wrote 74 MB of log in 12 minutes); what is down
    is said by the health check and the API once per state change. One 503 line a minute per process passes,
    counting the ones left out."""

    EVERY_SECONDS = 60

    def __init__(self):
        super().__init__()
        self.last = float("-inf")
        self.skipped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) != 503:
            return True
        now = time.monotonic()
        if now - self.last < self.EVERY_SECONDS:
            self.skipped += 1
            return False
        if self.skipped:
            record.msg = f"{record.msg} ({self.skipped} more 503 answers in the last minute were not logged)"
        self.last, self.skipped = now, 0
        return True
