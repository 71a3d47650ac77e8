"""Cross-cutting response headers, and the request path as the client sent it."""

from django.utils.cache import add_never_cache_headers


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
