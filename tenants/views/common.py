"""What every dashboard view shares: the permission gate, memory-service errors -> HTTP, streamed exports."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from datetime import datetime
from functools import wraps
from itertools import chain

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.middleware import HtmxDetails

from memadmin.memory import errors
from memadmin.memory.capabilities import Can
from memadmin.memory.records import DeletionResult
from memadmin.memory.scope import Scope
from tenants.export_formats import CONTENT_TYPES, content_disposition, ending_visibly, export_lines
from tenants.http import client_ip
from tenants.models import Membership, Tenant
from tenants.permissions import MUTATIONS, URL_CAPABILITIES, allowed_capabilities, get_membership_or_404, require
from tenants.scoping import scope_for_membership

ERROR_TITLES = {
    400: "That request did not make sense",
    403: "You do not have access to this",
    404: "Not found",
    409: "That cannot be done right now",
    503: "The memory store is unreachable",
}


# What the operator must fix, without the server's own words (paths, ports) on a page.
REFUSAL_MESSAGES = {
    "persistence_failing": "The memory store refuses writes: it cannot save to disk (is the disk full?). Nothing "
    "was changed; reading still works.",
    "out_of_memory": "The memory store refuses writes: it is out of memory. Nothing was changed; reading still works.",
    "read_only": "The memory store refuses writes: it is a read-only replica. Nothing was changed.",
    "disk_full": "The disk under memadmin's data dir is full: nothing more can be stored until space is freed. "
    "Nothing was changed.",
}


def render_error(
    request: HttpRequest, status: int, message: str, *, form=None, template: str | None = None, title: str | None = None
) -> HttpResponse:
    """A full error page, or just the error panel when HTMX asked for a fragment."""
    context = {
        "status": status,
        "title": title or ERROR_TITLES.get(status, "Something went wrong"),
        "message": message,
        "form": form,
    }
    if is_fragment(request):
        response = render(request, "partials/error.html", context, status=status)
        if not request.htmx.target:
            # The request targeted an element without an id (a table row): show the error as a toast instead.
            response["HX-Retarget"], response["HX-Reswap"] = "#toasts", "beforeend"
        return response
    return render(request, template or "error.html", context, status=status)


def memory_error_response(request: HttpRequest, exc: errors.MemoryServiceError) -> HttpResponse:
    if isinstance(exc, errors.StoreRefusesWrites):
        return render_error(request, 503, REFUSAL_MESSAGES[exc.cause], title="Nothing can be stored right now")
    if isinstance(exc, errors.StoreUnavailable):
        # The detailed reason (host, errno) goes to the logs via the exception chain, not to the page.
        return render_error(
            request, 503, "The memory store is unreachable. Nothing was read or changed; try again in a minute."
        )
    if isinstance(exc, errors.IncompleteDeletion):
        return render_error(request, 503, exc.message)
    status = exc.status if exc.status in ERROR_TITLES else 400
    return render_error(request, status, exc.message)


def memory_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Map the memory service's typed errors to statuses, in one place, for every dashboard view."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except errors.MemoryServiceError as exc:
            return memory_error_response(request, exc)

    return wrapper


class TenantRequest(HttpRequest):
    """What tenant_view hands a dashboard view (like django-htmx's HtmxHttpRequest): the request, with the
    member's tenant, membership and memory scope already resolved."""

    tenant: Tenant
    membership: Membership
    scope: Scope
    allowed: frozenset[str]  # the member's capabilities
    can: Can  # the same as named flags (request.can.offboard); templates get it as ``can``
    htmx: HtmxDetails


def tenant_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login, method, membership (404 for outsiders), capability (403) and error mapping, in that order.

    The capability and the method come from the URL's name in tenants/permissions.py, the one table, so a
    view cannot declare something else. The view gets a TenantRequest (.tenant, .membership, .scope, .allowed,
    .can).
    """

    @wraps(view)
    def wrapper(request: TenantRequest, tenant_slug: str, *args, **kwargs) -> HttpResponse:
        name = request.resolver_match.url_name
        methods = ("POST",) if name in MUTATIONS else ("GET", "HEAD")
        if request.method not in methods:
            return HttpResponseNotAllowed(methods)
        membership = get_membership_or_404(request, tenant_slug)
        require(membership, URL_CAPABILITIES[name])
        request.membership = membership
        request.tenant = membership.tenant
        request.allowed = allowed_capabilities(membership)
        request.can = Can(request.allowed)
        request.scope = scope_for_membership(membership, ip=client_ip(request))
        response = memory_errors(view)(request, *args, **kwargs)
        # Same URL, two bodies (page or fragment): caches must keep them apart.
        patch_vary_headers(response, ("HX-Request",))
        return response

    wrapper.is_tenant_view = True
    return login_required(wrapper)


def is_fragment(request) -> bool:
    """HTMX asked for a piece of a page (not a boosted navigation, not a back-button history restore)."""
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


def wants_counts(request) -> bool:
    """The page's counts block asked to be re-rendered alone (app.js does, after a memory is deleted in place):
    the view answers with its #counts partial, from counts only, without reading (or auditing) any memory."""
    return is_fragment(request) and request.htmx.target == "counts"


def recount_requested(request) -> bool:
    """The results are re-read after a deletion (app.js sends this header): their total is counted again, not
    carried over from the page cursor."""
    return is_fragment(request) and request.headers.get("MemAdmin-Recount") == "1"


def memories_changed(response: HttpResponse) -> HttpResponse:
    """Tell the page that memories were deleted in place: app.js re-reads its results and counts."""
    # After the settle: the deleted row is gone first, and its toast has found #toasts.
    response["HX-Trigger-After-Settle"] = "memories-changed"
    return response


DELETION_RESULT_SESSION_KEY = "memadmin.deletion_result"


def deletion_result_stash(request, *, key: str, result: DeletionResult) -> None:
    """A deletion's counts cross the redirect of post-redirect-get in the session, to be shown once (a reload
    of the page after it shows the store as it is, and never deletes again)."""
    shown = {**asdict(result), "verified_at": result.verified_at.isoformat() if result.verified_at else None}
    shown.pop("indexes", None)  # not shown; may hold values the session's JSON cannot carry
    request.session[DELETION_RESULT_SESSION_KEY] = {**request.session.get(DELETION_RESULT_SESSION_KEY, {}), key: shown}


def deletion_result_pop(request, *, key: str) -> DeletionResult | None:
    stashed = request.session.get(DELETION_RESULT_SESSION_KEY)
    if not isinstance(stashed, dict) or key not in stashed:
        return None
    shown = stashed.pop(key)
    request.session[DELETION_RESULT_SESSION_KEY] = stashed
    if shown.get("verified_at"):
        shown["verified_at"] = datetime.fromisoformat(shown["verified_at"])
    return DeletionResult(**shown)


def safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


# --- streamed exports -------------------------------------------------------------


def streamed_download(
    lines: Iterable[str], filename: str, *, content_type: str, scope: Scope | None
) -> StreamingHttpResponse:
    """Every streamed download of the dashboard: it ends visibly if it fails midway (logged and audited for
    ``scope``), names its file per RFC 6266 and is never cached (it holds personal data)."""
    response = StreamingHttpResponse(ending_visibly(lines, scope=scope, what=filename), content_type=content_type)
    response["Content-Disposition"] = content_disposition(filename)
    response["Cache-Control"] = "no-store"
    return response


def streamed_export(
    items: Iterator[dict], fmt: str, filename: str, *, scope: Scope | None = None
) -> StreamingHttpResponse:
    """Stream a memory export. The first item is fetched before the headers go out, so an unreachable store
    still becomes a 503 page instead of a truncated download."""
    items = iter(items)
    first = next(items, None)
    body = chain([first], items) if first is not None else iter(())
    return streamed_download(export_lines(body, fmt), f"{filename}.{fmt}", content_type=CONTENT_TYPES[fmt], scope=scope)
