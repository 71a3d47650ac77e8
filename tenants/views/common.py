"""What every dashboard view shares: the permission gate, memory-service errors -> HTTP, streamed exports."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import wraps
from itertools import chain

from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from memadmin.memory import errors
from memadmin.memory.scope import scope_for_membership
from tenants.export_format import (
    CSV_COLUMNS,
    Echo,
    SafeCSVWriter,
    content_disposition,
    csv_row,
    dump_json,
    ending_visibly,
)
from tenants.permissions import MUTATIONS, allowed_actions, get_membership_or_404, require

ERROR_TITLES = {
    400: "That request did not make sense",
    403: "You do not have access to this",
    404: "Not found",
    409: "That cannot be done right now",
    503: "The memory store is unreachable",
}


def client_ip(request) -> str | None:
    # No proxy header is trusted here: a spoofable X-Forwarded-For must not end up in the audit log.
    return request.META.get("REMOTE_ADDR") or None


def render_error(request, status: int, message: str, *, form=None, template: str | None = None):
    """A full error page, or just the error panel when HTMX asked for a fragment."""
    context = {"status": status, "title": ERROR_TITLES.get(status, "Something went wrong"), "message": message,
               "form": form}  # fmt: skip
    if is_fragment(request):
        response = render(request, "partials/error.html", context, status=status)
        if not request.htmx.target:
            # The request targeted an element without an id (a table row): show the error as a toast instead.
            response["HX-Retarget"], response["HX-Reswap"] = "#toasts", "beforeend"
        return response
    return render(request, template or "error.html", context, status=status)


def memory_error_response(request, exc: errors.MemoryServiceError):
    if isinstance(exc, errors.StoreUnavailable):
        # The detailed reason (host, errno) goes to the logs via the exception chain, not to the page.
        return render_error(request, 503, "The memory store is unreachable. Nothing was read or changed; "
                            "try again in a minute.")  # fmt: skip
    if isinstance(exc, errors.IncompleteDeletion):
        return render_error(request, 503, exc.message)
    status = exc.status if exc.status in ERROR_TITLES else 400
    return render_error(request, status, exc.message)


def memory_errors(view):
    """Map the memory service's typed errors to statuses, in one place, for every dashboard view."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except errors.MemoryServiceError as exc:
            return memory_error_response(request, exc)

    return wrapper


def tenant_view(action: str):
    """Login, method, membership (404 for outsiders), role (403) and error mapping, in that order.

    The view is called as view(request, membership, *args); request.scope is the memory scope.
    """
    methods = ["POST"] if action in MUTATIONS else ["GET", "HEAD"]

    def decorate(view):
        @wraps(view)
        def wrapper(request, tenant_slug, *args, **kwargs):
            membership = get_membership_or_404(request, tenant_slug)
            require(membership, action)
            request.membership = membership
            request.tenant = membership.tenant
            request.allowed = allowed_actions(membership)
            request.scope = scope_for_membership(membership, ip=client_ip(request))
            response = view(request, membership, *args, **kwargs)
            # Same URL, two bodies (page or fragment): caches must keep them apart.
            patch_vary_headers(response, ("HX-Request",))
            return response

        wrapper.permission_action = action
        return login_required(require_http_methods(methods)(memory_errors(wrapper)))

    return decorate


def is_fragment(request) -> bool:
    """HTMX asked for a piece of a page (not a boosted navigation, not a back-button history restore)."""
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


def safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):  # fmt: skip
        return target
    return fallback


# --- streamed exports -------------------------------------------------------------


def _json_lines(items: Iterable[dict]) -> Iterator[str]:
    yield "[\n"
    for i, item in enumerate(items):
        yield ("" if i == 0 else ",\n") + dump_json(item)
    yield "\n]\n"


def _csv_lines(items: Iterable[dict]) -> Iterator[str]:
    writer = SafeCSVWriter(Echo())
    yield writer.writerow(CSV_COLUMNS)
    for item in items:
        yield writer.writerow(csv_row(item))


def streamed_export(items: Iterator[dict], fmt: str, filename: str, *, scope=None) -> StreamingHttpResponse:
    """Stream an export. The first item is fetched before the headers go out, so an unreachable store
    still becomes a 503 page instead of a truncated download; a failure after that ends the file visibly
    (and is logged and audited for ``scope``)."""
    items = iter(items)
    first = next(items, None)
    body = chain([first], items) if first is not None else iter(())
    lines = _csv_lines(body) if fmt == "csv" else _json_lines(body)
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    response = StreamingHttpResponse(ending_visibly(lines, scope=scope, what=f"{filename}.{fmt}"),
                                     content_type=content_type)  # fmt: skip
    response["Content-Disposition"] = content_disposition(f"{filename}.{fmt}")
    response["Cache-Control"] = "no-store"
    return response


def export_filename(*parts: str) -> str:
    from django.utils import timezone
    from django.utils.text import get_valid_filename

    stem = "-".join(p for p in parts if p)
    return get_valid_filename(f"{stem}-{timezone.now():%Y-%m-%d}")[:150]
