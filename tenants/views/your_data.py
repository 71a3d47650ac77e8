"""The end user's own page, reached through a signed, expiring, revocable link. No staff navigation."""

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from memadmin.memory import selectors, services
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.receipts import KINDS, receipt_get, receipt_list, receipt_visible
from memadmin.memory.scope import Scope
from tenants.export_formats import export_filename, plain_items
from tenants.forms import EndUserDeleteAllForm, UserSearchForm, search_closeness
from tenants.http import client_ip
from tenants.jobs.models import Job
from tenants.jobs.selectors import erasure_latest
from tenants.jobs.services import erasure_request
from tenants.links import LinkInvalid, data_link_verify
from tenants.models import App, DataLink
from tenants.scoping import scope_for_end_user
from tenants.transparency import person_accesses
from tenants.views.common import (
    deletion_result_pop,
    deletion_result_stash,
    is_fragment,
    memories_changed,
    memory_errors,
    recount_requested,
    streamed_export,
    wants_counts,
)
from tenants.views.receipts import receipt_download

RECEIPTS_SHOWN, RECEIPTS_READ = 20, 100  # the newest receipts about this person, among the apps of the link


class EndUserRequest(HttpRequest):
    """What end_user_view hands a your-data view: the request, with the verified link and the end user's
    scope (their user_id, in the apps the link was issued for)."""

    data_link: DataLink
    scope: Scope


def end_user_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Verify the link on every request (it may have expired or been revoked since the page loaded)."""

    @wraps(view)
    def wrapper(request: EndUserRequest, token: str, *args, **kwargs) -> HttpResponse:
        try:
            link = data_link_verify(token)
        except LinkInvalid as exc:
            return render(request, "your_data/invalid.html", {"message": str(exc)}, status=403)
        request.data_link = link
        request.scope = scope_for_end_user(link, ip=client_ip(request))
        return view(request, token, *args, **kwargs)

    return memory_errors(wrapper)


@require_GET
@end_user_view
def your_data(request: EndUserRequest, token) -> HttpResponse:
    link, scope = request.data_link, request.scope
    data = request.GET.copy()
    data["user_id"] = link.user_id  # fixed by the link, whatever the query string says
    form = UserSearchForm(data)
    template = "your_data/page.html#results" if is_fragment(request) else "your_data/page.html"
    if not form.is_valid():
        return render(request, template, {"form": form, "link": link, "token": token}, status=400)
    query = form.cleaned_data["q"]
    # End users read app names, not app_ids.
    names = dict(App.objects.filter(tenant=link.tenant).values_list("app_id", "name"))
    context = {"form": form, "link": link, "token": token, "query": query, "app_names": names}
    if wants_counts(request):  # after a delete on the page: the totals, counted anew
        context["counts"] = selectors.memory_counts(scope=scope)
        return render(request, "your_data/page.html#counts", context)
    if query:
        context["results"] = selectors.memory_search(
            scope=scope, query=query, top_k=25, keyword_search=True, **search_closeness(form.cleaned_data)
        )
    else:
        context["page"] = selectors.memory_list(
            scope=scope,
            page=form.cleaned_data.get("page") or 1,
            page_size=25,
            recount=recount_requested(request),
            clamp=True,
        )
        context["results"] = context["page"].items
    if not is_fragment(request):
        context["counts"] = selectors.memory_counts(scope=scope)
        context.update(person_accesses(tenant=link.tenant, user_id=link.user_id))
        context["delete_all_form"] = EndUserDeleteAllForm()
        context["erasure"] = erasure_latest(scope=scope, user_id=link.user_id)
        context["deleted"] = deletion_result_pop(request, key=f"link:{link.pk}")
        context["receipts"] = [
            r for r in receipt_list(scope=scope)[:RECEIPTS_READ] if receipt_visible(scope=scope, receipt=r)
        ][:RECEIPTS_SHOWN]
        context["kinds"] = KINDS
    return render(request, template, context)


@require_GET
@end_user_view
def your_data_receipt(request: EndUserRequest, token, receipt_id) -> HttpResponse:
    return receipt_download(receipt_get(scope=request.scope, receipt_id=receipt_id))


@require_GET
@end_user_view
def your_data_export(request: EndUserRequest, token) -> HttpResponse:
    link = request.data_link
    items = selectors.memory_export(scope=request.scope, filters=filter_from_fields(user_id=link.user_id))
    names = dict(App.objects.filter(tenant=link.tenant).values_list("app_id", "name"))
    return streamed_export(
        plain_items(items, names), "json", export_filename("my-data", link.tenant.slug), scope=request.scope
    )


@require_POST
@end_user_view
def your_data_delete_memory(request: EndUserRequest, token, app_id, memory_id) -> HttpResponse:
    page = reverse("your_data", kwargs={"token": token})
    if request.POST.get("confirm") != "yes":
        memory = selectors.memory_get(scope=request.scope, memory_id=memory_id, app_id=app_id)
        return render(
            request,
            "your_data/confirm_delete.html",
            {"memory": memory, "link": request.data_link, "token": token, "next": page},
        )
    services.memory_delete(scope=request.scope, memory_id=memory_id, app_id=app_id)
    message = "That memory has been deleted."
    if is_fragment(request):
        return memories_changed(render(request, "partials/toast.html", {"message": message, "oob": True}))
    messages.success(request, message)
    return redirect(page)


@require_POST
@end_user_view
def your_data_delete_all(request: EndUserRequest, token) -> HttpResponse:
    link = request.data_link
    form = EndUserDeleteAllForm(request.POST)
    if not form.is_valid():
        return render(request, "your_data/deleted.html", {"form": form, "link": link, "token": token}, status=400)
    outcome = erasure_request(scope=request.scope, filters=filter_from_fields(user_id=link.user_id))
    # Post-redirect-get: the page shows the running erasure (a job) or these counts, once.
    if not isinstance(outcome, Job):
        deletion_result_stash(request, key=f"link:{link.pk}", result=outcome)
    return redirect("your_data", token=token)
