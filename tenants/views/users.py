"""End users, as support staff see them: find one, see everything they have, export, erase, issue a link.

The user id travels in the query string (or the POST body), never in the path: ids may contain '/'
and other punctuation, and must reach the service exactly as typed.
"""

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.ids import id_is_valid
from memadmin.memory.models import LegalHold
from memadmin.memory.receipts import KINDS, receipt_list
from memadmin.memory.records import DeletionResult
from memadmin.memory.scope import Scope
from tenants.export_formats import export_filename
from tenants.forms import (
    DeleteAgentForm,
    DeleteRunForm,
    DeleteUserForm,
    ExportForm,
    IssueLinkForm,
    LinkFilterForm,
    UserForm,
    UserSearchForm,
    search_closeness,
)
from tenants.jobs.models import Job
from tenants.jobs.services import erasure_request
from tenants.links import data_link_issue, data_link_revoke
from tenants.models import DataLink, EndUser
from tenants.views.common import (
    TenantRequest,
    deletion_result_pop,
    deletion_result_stash,
    is_fragment,
    memories_changed,
    recount_requested,
    render_error,
    safe_next,
    streamed_export,
    tenant_view,
    wants_counts,
)

ISSUED_LINK_SESSION_KEY = "memadmin.issued_link"
RECEIPTS_SHOWN = 20  # the newest of a person's erasure receipts; the Erasures page filtered by them has all


def user_url(tenant_slug: str, user_id: str, name: str = "user") -> str:
    return f"{reverse(name, args=[tenant_slug])}?{urlencode({'user_id': user_id})}"


def erase_user(*, scope: Scope, user_id: str) -> DeletionResult | Job:
    """Every memory of one end user across the tenant's apps, with history and messages; verified now,
    or by a job (a large user, an index that cannot vouch for itself) whose receipt follows."""
    return erasure_request(scope=scope, filters=filter_from_fields(user_id=user_id))


@tenant_view
def user_index(request: TenantRequest) -> HttpResponse:
    """Find a user: by id, or among the ones with the most memories."""
    counts = selectors.memory_counts(scope=request.scope, top=50, max_age=60)
    # Erased people are not "recently seen": their row would open an empty page (their links are on Data links).
    known = EndUser.objects.for_tenant(request.tenant).filter(erased_at__isnull=True).order_by("-last_seen")[:50]
    return render(
        request,
        "tenants/users.html",
        {"counts": counts, "known": known, "form": UserForm(), "held_users": _held_users(request.tenant)},
    )


SUGGESTIONS = 10
LAST_CHARACTER = "\U0010ffff"


@tenant_view
def user_suggest(request: TenantRequest) -> HttpResponse:
    """Up to ten known user ids that start with what was typed (a <datalist>'s options).

    A range over the (tenant, user_id) unique index, so the cost follows the ten rows read, never the
    number of people; exact and case-sensitive like every id here. Ids come from the tenant's book of end
    users (tenants/entities.py): everyone written through memadmin. An id written only by Mem0 OSS straight
    into Valkey is not suggested, but still opens when typed in full."""
    prefix = (request.GET.get("user_id") or "").strip()[:128]
    ids: list[str] = []
    if prefix and id_is_valid(prefix, "user_id"):  # a control character is in no id (and PostgreSQL refuses NUL)
        rows = (
            EndUser.objects.for_tenant(request.tenant)
            .filter(user_id__gte=prefix, user_id__lt=prefix + LAST_CHARACTER)
            .order_by("user_id")
            .values_list("user_id", flat=True)[:SUGGESTIONS]
        )
        ids = [user_id for user_id in rows if user_id.startswith(prefix)]  # a database collation may differ
    return render(request, "partials/user_suggestions.html", {"ids": ids})


def _held_users(tenant) -> set[str]:
    return set(LegalHold.objects.for_tenant(tenant).active().exclude(user_id="").values_list("user_id", flat=True))


@tenant_view
def user_detail(request: TenantRequest) -> HttpResponse:
    scope = request.scope
    form = UserSearchForm(request.GET)
    template = "tenants/user.html#results" if is_fragment(request) else "tenants/user.html"
    if not form.is_valid():
        if "user_id" in form.errors:
            return render_error(request, 400, "; ".join(form.errors["user_id"]), form=form)
        return render(request, template, {"form": form, "user_id": form.cleaned_data.get("user_id")}, status=400)
    user_id, query = form.cleaned_data["user_id"], form.cleaned_data["q"]
    filters = filter_from_fields(user_id=user_id)
    context = {"form": form, "user_id": user_id, "query": query, "selection_fields": {"user_id": user_id}}
    if wants_counts(request):  # after a delete in place: the counts, chips, runs and agents, counted anew
        context.update(_user_counts(request, user_id, filters), **_groups(scope, filters))
        return render(request, "tenants/user.html#counts_refresh", context)
    if query:
        context["results"] = selectors.memory_search(
            scope=scope,
            query=query,
            filters=filters,
            top_k=25,
            keyword_search=True,
            **search_closeness(form.cleaned_data),
        )
    else:
        context["page"] = selectors.memory_list(
            scope=scope,
            filters=filters,
            page=form.cleaned_data.get("page") or 1,
            page_size=25,
            recount=recount_requested(request),
            clamp=True,
        )
        context["results"] = context["page"].items
    if is_fragment(request):
        return render(request, template, context)
    context.update(_user_counts(request, user_id, filters))
    context["erased"] = deletion_result_pop(request, key=_erased_key(request, user_id))
    context["receipts"] = list(receipt_list(scope=scope).filter(user_id=user_id)[:RECEIPTS_SHOWN])
    context["kinds"] = KINDS
    context["group_deleted"] = deletion_result_pop(request, key=_group_key(request, user_id))
    if request.can.manage_links:
        # Links outlive data: a person who deleted everything still holds a link until it expires or is revoked.
        context["link_form"] = IssueLinkForm(initial={"user_id": user_id})
        context["links"] = DataLink.objects.for_tenant(request.tenant).filter(user_id=user_id)[:20]
        context["issued_link"] = _pop_issued_link(request, user_id)
        context["now"] = timezone.now()
    if not context["counts"].total and not query and not context["erased"]:
        # Nothing to export or erase: say so, instead of an empty profile offering both.
        return render(request, "tenants/user_none.html", context)
    context["delete_form"] = DeleteUserForm(initial={"user_id": user_id})
    context.update(_groups(scope, filters))
    return render(request, template, context)


def _groups(scope: Scope, filters) -> dict:
    """The person's runs and agents: counted by the engine over their memories only (one FT.AGGREGATE per app)."""
    runs = selectors.memory_groups(scope=scope, field="run_id", filters=filters, limit=GROUPS_SHOWN)
    agents = selectors.memory_groups(scope=scope, field="agent_id", filters=filters, limit=GROUPS_SHOWN)
    return {
        "runs": runs,
        "agents": agents,
        "group_lists": [("run", runs), ("agent", agents)],
        "groups_shown": GROUPS_SHOWN,
    }


def _user_counts(request: TenantRequest, user_id: str, filters) -> dict:
    return {
        "counts": selectors.memory_counts(scope=request.scope, filters=filters, top=20),
        "end_user": EndUser.objects.for_tenant(request.tenant).filter(user_id=user_id).first(),
        "on_hold": user_id in _held_users(request.tenant),
    }


@tenant_view
def user_export(request: TenantRequest) -> HttpResponse:
    user_form, export_form = UserForm(request.GET), ExportForm(request.GET)
    if not (user_form.is_valid() and export_form.is_valid()):
        return render_error(request, 400, "Export needs a valid user_id and format json or csv.", form=user_form)
    user_id = user_form.cleaned_data["user_id"]
    items = selectors.memory_export(scope=request.scope, filters=filter_from_fields(user_id=user_id))
    return streamed_export(items, export_form.fmt, export_filename(request.tenant.slug, user_id), scope=request.scope)


@tenant_view
def user_delete(request: TenantRequest) -> HttpResponse:
    form = DeleteUserForm(request.POST)
    template = "tenants/user_delete.html#panel" if is_fragment(request) else "tenants/user_delete.html"
    if not form.is_valid():
        return render(request, template, {"form": form, "user_id": request.POST.get("user_id", "")}, status=400)
    user_id = form.cleaned_data["user_id"]
    outcome = erase_user(scope=request.scope, user_id=user_id)
    if not is_fragment(request):  # post-redirect-get: to the job, or to the person's page with the counts
        if isinstance(outcome, Job):
            return redirect("job", tenant_slug=request.tenant.slug, job_id=outcome.pk)
        deletion_result_stash(request, key=_erased_key(request, user_id), result=outcome)
        return redirect(user_url(request.tenant.slug, user_id) + "#erase-panel")
    if isinstance(outcome, Job):
        return render(request, template, {"form": None, "user_id": user_id, "job": outcome})
    # remaining is counted in the store after the deletion; the panel shows it whatever it is, and the page's
    # counts and results are re-read.
    return memories_changed(render(request, template, {"form": None, "user_id": user_id, "result": outcome}))


def _erased_key(request: TenantRequest, user_id: str) -> str:
    return f"user:{request.tenant.pk}:{user_id}"


def _group_key(request: TenantRequest, user_id: str) -> str:
    return f"group:{request.tenant.pk}:{user_id}"


GROUPS_SHOWN = 50  # runs and agents listed on a person's page, largest first


@tenant_view
def user_run_delete(request: TenantRequest) -> HttpResponse:
    """Every memory of one run (session) of one person, through the erasure path (verified, audited)."""
    return _group_delete(request, DeleteRunForm(request.POST), "run")


@tenant_view
def user_agent_delete(request: TenantRequest) -> HttpResponse:
    """What one agent remembers of one person (their other agents keep theirs), through the erasure path."""
    return _group_delete(request, DeleteAgentForm(request.POST), "agent")


def _group_delete(request: TenantRequest, form, kind: str) -> HttpResponse:
    if not form.is_valid():
        errors = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        return render_error(request, 400, f"Nothing was deleted: {errors}", form=form)
    user_id, value = form.cleaned_data["user_id"], form.cleaned_data[form.field]
    outcome = erasure_request(scope=request.scope, filters=filter_from_fields(user_id=user_id, **{form.field: value}))
    if isinstance(outcome, Job):
        return redirect("job", tenant_slug=request.tenant.slug, job_id=outcome.pk)
    deletion_result_stash(request, key=_group_key(request, user_id), result=outcome)
    label = f"run {value}" if kind == "run" else f"agent {value}'s memories of {user_id}"
    if outcome.remaining:
        messages.error(request, f"Deleting {label} left {outcome.remaining} memories; try again.")
    else:
        messages.success(
            request,
            f"Deleted {label}: {outcome.deleted} memor{'y' if outcome.deleted == 1 else 'ies'}"
            ", counted 0 remaining in the store.",
        )
    return redirect(user_url(request.tenant.slug, user_id) + f"#{kind}s")


def _pop_issued_link(request: TenantRequest, user_id: str) -> str | None:
    issued = request.session.get(ISSUED_LINK_SESSION_KEY)
    if not isinstance(issued, dict) or user_id not in issued:
        return None
    url = issued.pop(user_id)
    request.session[ISSUED_LINK_SESSION_KEY] = issued
    return url


@tenant_view
def link_issue(request: TenantRequest) -> HttpResponse:
    form = IssueLinkForm(request.POST)
    if not form.is_valid():
        return render_error(request, 400, "Choose how long the link stays valid.", form=form)
    user_id = form.cleaned_data["user_id"]
    _link, path = data_link_issue(scope=request.scope, user_id=user_id, ttl=timedelta(days=form.cleaned_data["days"]))
    # The token is never stored: show it once, after the redirect, on this person's page only (kept per
    # user_id: another user's page rendered first, or a second tab, must never show it under their name).
    request.session[ISSUED_LINK_SESSION_KEY] = {
        **request.session.get(ISSUED_LINK_SESSION_KEY, {}),
        user_id: request.build_absolute_uri(path),
    }
    messages.success(request, f"Link issued for {user_id}. Copy it now: it is shown only once.")
    return redirect(user_url(request.tenant.slug, user_id))


@tenant_view
def link_revoke(request: TenantRequest, link_id) -> HttpResponse:
    """Confirm first (a page, so it works without JavaScript), then revoke; back to where the button was."""
    back = safe_next(request, reverse("links", args=[request.tenant.slug]))
    if request.POST.get("confirm") != "yes":
        link = get_object_or_404(DataLink.objects.for_tenant(request.tenant), pk=link_id)
        return render(request, "tenants/link_confirm_revoke.html", {"link": link, "next": back, "now": timezone.now()})
    link = data_link_revoke(scope=request.scope, link_id=link_id)
    messages.success(request, f"The link for {link.user_id} no longer works.")
    return redirect(back)


LINKS_PER_PAGE = 50


@tenant_view
def link_index(request: TenantRequest) -> HttpResponse:
    """Every "your data" link of the tenant, newest first: whose, who issued it, active, expired or revoked,
    last used. A link outlives the person's memories, so this is where it is found when they are gone."""
    form = LinkFilterForm(request.GET)
    if not form.is_valid():
        return render_error(request, 400, "; ".join(e for errors in form.errors.values() for e in errors), form=form)
    now = timezone.now()
    links = DataLink.objects.for_tenant(request.tenant)
    state = form.cleaned_data.get("state")
    if state == "active":
        links = links.filter(revoked_at__isnull=True, expires_at__gt=now)
    elif state == "expired":
        links = links.filter(revoked_at__isnull=True, expires_at__lte=now)
    elif state == "revoked":
        links = links.filter(revoked_at__isnull=False)
    if form.cleaned_data.get("user_id"):
        links = links.filter(user_id=form.cleaned_data["user_id"])
    page = Paginator(links.order_by("-created_at"), LINKS_PER_PAGE).get_page(form.cleaned_data.get("page") or 1)
    for link in page.object_list:
        link.current_state = link.state(now)
    return render(
        request,
        "tenants/links.html",
        {"form": form, "page": page, "now": now, "state": state, "here": request.get_full_path()},
    )
