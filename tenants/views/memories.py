"""Memory browser, memory detail, editing and deleting one memory, exporting a whole app."""

import json
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse

from memadmin.memory import selectors, services
from memadmin.memory.errors import NotFound
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.ids import id_is_valid
from tenants.export_formats import export_filename
from tenants.forms import BrowseForm, ExportForm, MemoryEditForm, search_closeness
from tenants.models import App
from tenants.views.common import (
    TenantRequest,
    is_fragment,
    memories_changed,
    recount_requested,
    render_error,
    safe_next,
    streamed_export,
    tenant_view,
)

# Where the audit row says the memories were shown ("listed 6 of your memories on the memory browser").
PLACE = "memory browser"


def _parse_time(value) -> datetime | None:
    """Mem0 writes history times as ISO strings; show them like every other time on the page."""
    try:
        return datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


@tenant_view
def browse(request: TenantRequest) -> HttpResponse:
    """Newest first, or ranked by a semantic search when q is set; HTMX gets just the results."""
    scope = request.scope
    app_id = request.GET.get("app", "")
    offboarded = request.tenant.apps.filter(app_id=app_id, status=App.Status.OFFBOARDED)
    # Only a valid id is looked up (PostgreSQL refuses a NUL in text); anything else is the form's 400 below.
    if app_id and id_is_valid(app_id, "app") and scope.app(app_id) is None and offboarded.exists():
        # An old link to an app whose memories are gone: its tombstone says so, with the receipt.
        return redirect("app", tenant_slug=request.tenant.slug, app_id=app_id)
    form = BrowseForm(request.GET, apps=scope.apps)
    template = "tenants/memories.html#results" if is_fragment(request) else "tenants/memories.html"
    if not form.is_valid():
        return render(request, template, {"form": form}, status=400)
    query = form.cleaned_data["q"]
    context = {"form": form, "query": query, "selection_fields": _selection_fields(form)}
    if query:
        context["results"] = selectors.memory_search(
            scope=scope,
            query=query,
            filters=form.filters(),
            top_k=form.size,
            keyword_search=True,  # the dashboard searches hybrid: a word typed that the memory holds counts
            place=PLACE,
            **search_closeness(form.cleaned_data),
        )
    elif form.cleaned_data.get("page"):  # numbered pages (old links); walks cached cursors
        context["page"] = selectors.memory_list(
            scope=scope,
            filters=form.filters(),
            page=form.page_number,
            page_size=form.size,
            recount=recount_requested(request),
            clamp=True,
            place=PLACE,
        )
        context["results"] = context["page"].items
    else:  # keyset: "Older" carries the cursor of the last memory shown, so every page costs the same
        context["cursor_page"] = selectors.memory_page_after(
            scope=scope,
            filters=form.filters(),
            cursor=form.cleaned_data.get("after") or None,
            page_size=form.size,
            recount=recount_requested(request),
            place=PLACE,
        )
        context["results"] = context["cursor_page"].items
    return render(request, template, context)


def _selection_fields(form: BrowseForm) -> dict[str, str]:
    """The filters a bulk selection of "all matching" stands for (partials/bulk_bar.html)."""
    names = {"user_id": "user_id", "agent_id": "agent_id", "run_id": "run_id", "app_id": "app"}
    return {name: form.cleaned_data.get(field) or "" for name, field in names.items()}


def _metadata_json(metadata: dict) -> str:
    return json.dumps(metadata, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _memory_context(request: TenantRequest, memory) -> dict:
    """What the memory page shows of one memory: the memory, its Mem0 history, where Back leads."""
    history = selectors.memory_history(scope=request.scope, memory_id=memory.id, app_id=memory.app_id)
    for entry in history:
        entry["when"] = _parse_time(entry.get("updated_at") or entry.get("created_at"))
    back = safe_next(request, reverse("memories", args=[request.tenant.slug]))
    return {
        "memory": memory,
        "history": history,
        "back": back,
        "back_label": _back_label(request, back, memory),
        "metadata_json": _metadata_json(memory.metadata),
    }


@tenant_view
def detail(request: TenantRequest, app_id, memory_id) -> HttpResponse:
    memory = selectors.memory_get(scope=request.scope, memory_id=memory_id, app_id=app_id)
    template = "tenants/memory_detail.html#body" if is_fragment(request) else "tenants/memory_detail.html"
    return render(request, template, _memory_context(request, memory))


def _edit_page(request: TenantRequest, memory, form: MemoryEditForm, status: int = 200) -> HttpResponse:
    """The memory page with the edit form in place of its text and metadata (the form alone for HTMX)."""
    context = {**_memory_context(request, memory), "form": form, "editing": True}
    template = "tenants/memory_detail.html#body" if is_fragment(request) else "tenants/memory_detail.html"
    return render(request, template, context, status=status)


@tenant_view
def memory_edit(request: TenantRequest, app_id, memory_id) -> HttpResponse:
    """The edit form, filled with the memory as it is stored now."""
    memory = selectors.memory_get(scope=request.scope, memory_id=memory_id, app_id=app_id)
    form = MemoryEditForm(initial={"text": memory.memory, "metadata": _metadata_json(memory.metadata)})
    return _edit_page(request, memory, form)


@tenant_view
def memory_edit_save(request: TenantRequest, app_id, memory_id) -> HttpResponse:
    """Save an edit: the new text re-embedded through Mem0's update (its history row names the editor), the
    metadata replaced; then the memory page as stored (the form again with its errors: 400)."""
    scope = request.scope
    # Found in scope first: another tenant's memory is a 404 before any form error could tell it exists.
    memory = selectors.memory_get(scope=scope, memory_id=memory_id, app_id=app_id, audit=False)
    form = MemoryEditForm(request.POST)
    if not form.is_valid():
        return _edit_page(request, memory, form, status=400)
    data = form.cleaned_data
    try:
        memory, edited = services.memory_edit(
            scope=scope, memory_id=memory.id, app_id=memory.app_id, text=data["text"], metadata=data["metadata"]
        )
    except NotFound:
        return render_error(
            request, 404, "This memory was deleted while you edited it: nothing was saved, and it stays deleted."
        )
    message = f"Saved: edited {edited}." if edited else "Nothing changed: the memory is as it was."
    if not is_fragment(request):
        messages.success(request, message)
        page, back = reverse("memory", args=[request.tenant.slug, memory.app_id, memory.id]), safe_next(request, "")
        return redirect(f"{page}?{urlencode({'next': back})}" if back else page)
    response = render(request, "tenants/memory_detail.html#body", _memory_context(request, memory))
    response.content += render(request, "partials/toast.html", {"message": message, "oob": True}).content
    return response


def _back_label(request: TenantRequest, back: str, memory) -> str:
    """Say where the way back leads: the person's page it came from, or the memory browser."""
    if urlsplit(back).path == reverse("user", args=[request.tenant.slug]):
        person = QueryDict(urlsplit(back).query).get("user_id") or memory.user_id
        return f"Back to {person}" if person else "Back to the person"
    return "Back to memories"


@tenant_view
def memory_delete(request: TenantRequest, app_id, memory_id) -> HttpResponse:
    """Confirm first (a page without JS, hx-confirm with it), then delete and verify."""
    scope = request.scope
    fallback = reverse("memories", args=[request.tenant.slug])
    if request.POST.get("confirm") != "yes":
        memory = selectors.memory_get(scope=scope, memory_id=memory_id, app_id=app_id, audit=False)
        return render(
            request, "tenants/memory_confirm_delete.html", {"memory": memory, "next": safe_next(request, fallback)}
        )
    result = services.memory_delete(scope=scope, memory_id=memory_id, app_id=app_id)
    if result.remaining:
        return render_error(request, 503, "The memory could not be deleted completely; it is still stored.")
    message = "Memory deleted, with its history."
    if is_fragment(request):
        # The row's outerHTML becomes nothing; the message arrives out of band; the totals are re-read.
        return memories_changed(render(request, "partials/toast.html", {"message": message, "oob": True}))
    messages.success(request, message)
    return redirect(safe_next(request, fallback))


@tenant_view
def app_export(request: TenantRequest, app_id) -> HttpResponse:
    scope = request.scope
    if scope.app(app_id) is None:
        raise Http404("No such app.")
    form = ExportForm(request.GET)
    if not form.is_valid():
        return render_error(request, 400, "Choose json or csv.", form=form)
    items = selectors.memory_export(scope=scope, filters=filter_from_fields(app_id=app_id))
    return streamed_export(items, form.fmt, export_filename(request.tenant.slug, app_id), scope=request.scope)
