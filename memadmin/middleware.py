"""Cross-cutting response headers."""

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
