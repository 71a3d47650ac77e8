"""Agents and Runs: per app or tenant-wide, by id (prefix search, paged to the end), each agent's or run's
memories, and deleting them with a preview, typed confirmation and a receipt per person (tenants/selections.py).

Agent and run ids travel in the query string (or the POST body), never in the path, like user ids."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from memadmin.memory import selectors
from memadmin.memory.errors import NotFound
from memadmin.memory.records import Entity
from tenants.entity_forms import DeleteEntityForm, EntityForm, EntityListForm
from tenants.selections import erase_matching, selection_preview
from tenants.views.common import (
    TenantRequest,
    is_fragment,
    recount_requested,
    render_error,
    tenant_view,
    wants_counts,
)
from tenants.views.selection import erased_stash

PAGE_SIZE = 25


@dataclass(frozen=True)
class Kind:
    """An agent or a run, as these pages name it."""

    name: str  # "agent" | "run"
    field: str  # the memory field: agent_id | run_id
    plural: str  # the page title
    list_url: str
    detail_url: str
    delete_url: str

    @property
    def is_run(self) -> bool:
        return self.name == "run"


AGENT = Kind("agent", "agent_id", "Agents", "agents", "agent", "agent_delete")
RUN = Kind("run", "run_id", "Runs", "runs", "run", "run_delete")


def entity_url(tenant_slug: str, kind: Kind, value: str, app_id: str = "") -> str:
    query = {kind.field: value, **({"app": app_id} if app_id else {})}
    return f"{reverse(kind.detail_url, args=[tenant_slug])}?{urlencode(query)}"


@tenant_view
def agent_index(request: TenantRequest) -> HttpResponse:
    return _index(request, AGENT)


@tenant_view
def run_index(request: TenantRequest) -> HttpResponse:
    return _index(request, RUN)


@tenant_view
def agent_detail(request: TenantRequest) -> HttpResponse:
    return _detail(request, AGENT)


@tenant_view
def run_detail(request: TenantRequest) -> HttpResponse:
    return _detail(request, RUN)


@tenant_view
def agent_delete(request: TenantRequest) -> HttpResponse:
    return _delete(request, AGENT)


@tenant_view
def run_delete(request: TenantRequest) -> HttpResponse:
    return _delete(request, RUN)


def _index(request: TenantRequest, kind: Kind) -> HttpResponse:
    """Ids in order, PAGE_SIZE at a time; "Next" carries the last id shown, so any page costs what page 1 does."""
    form = EntityListForm(request.GET, field=kind.field, apps=request.scope.apps)
    template = "tenants/entities.html#results" if is_fragment(request) else "tenants/entities.html"
    context = {"form": form, "kind": kind}
    if not form.is_valid():
        return render(request, template, context, status=400)
    context["page"] = selectors.memory_entities(
        scope=request.scope,
        field=kind.field,
        filters=form.filters(),
        prefix=form.cleaned_data["q"],
        after=form.cleaned_data["after"] or None,
        page_size=PAGE_SIZE,
    )
    return render(request, template, context)


def _detail(request: TenantRequest, kind: Kind) -> HttpResponse:
    scope = request.scope
    form = EntityForm(request.GET, field=kind.field, apps=scope.apps)
    if not form.is_valid():
        return render_error(request, 400, "; ".join(e for errors in form.errors.values() for e in errors), form=form)
    filters = form.filters()
    try:
        entity = selectors.memory_entity(scope=scope, field=kind.field, value=form.value, filters=filters)
    except NotFound:
        if not is_fragment(request):
            raise  # one without memories in the scope is not found (404), like an id of another tenant
        # The page's last memory was just deleted in place: its counts and results are re-read, and say so.
        entity = Entity(id=form.value, count=0, people=0, apps=[], first_write=None, last_write=None)
    context = {"form": form, "kind": kind, "entity": entity, "value": form.value}
    context["selection_fields"] = form.fields_dict()
    if request.can.delete and (wants_counts(request) or not is_fragment(request)):  # the results alone need none
        context["preview"] = selection_preview(scope=scope, filters=filters)
    if wants_counts(request):  # after a delete in place: the counts line and the preview, counted anew
        return render(request, "tenants/entity.html#counts_refresh", context)
    context["cursor_page"] = selectors.memory_page_after(
        scope=scope,
        filters=filters,
        cursor=form.cleaned_data.get("after") or None,
        page_size=PAGE_SIZE,
        recount=recount_requested(request),
        place=f"{kind.name} page",
    )
    context["results"] = context["cursor_page"].items
    if is_fragment(request):
        return render(request, "tenants/entity.html#results", context)
    return render(request, "tenants/entity.html", context)


def _delete(request: TenantRequest, kind: Kind) -> HttpResponse:
    form = DeleteEntityForm(request.POST, field=kind.field, apps=request.scope.apps)
    if not form.is_valid():
        errors = "; ".join(e for errors in form.errors.values() for e in errors)
        return render_error(request, 400, f"Nothing was deleted: {errors}", form=form)
    erased = erase_matching(scope=request.scope, fields=form.fields_dict())
    label = f"{kind.name} {form.value}" + (f" in {form.cleaned_data['app']}" if form.cleaned_data["app"] else "")
    back = reverse(kind.list_url, args=[request.tenant.slug])
    return redirect(erased_stash(request, erased, what=f"the memories of {label}", back=back))
