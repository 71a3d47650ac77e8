"""Tenant overview: what is stored, counted by the store itself."""

from django.http import HttpResponse
from django.shortcuts import render

from memadmin.memory import selectors
from tenants.app_health import app_index_health
from tenants.forms import BrowseForm
from tenants.views.common import TenantRequest, tenant_view, wants_counts


@tenant_view
def overview(request: TenantRequest) -> HttpResponse:
    scope = request.scope
    only_counts = wants_counts(request)  # after a delete on this page: counted anew, no memory read
    counts = selectors.memory_counts(scope=scope, top=10, max_age=60, fresh=only_counts)
    apps = list(request.tenant.apps.order_by("app_id"))
    # Admins answer for erasures: they see whether each app's index can prove one complete.
    healths = app_index_health(apps=apps) if request.can.offboard else {}
    for app in apps:
        app.memory_count = counts.per_app.get(app.app_id)
        app.health = healths.get(app.pk)
    # An offboarded app stays listed (its tombstone links to the receipt) but is no longer one of the apps.
    live_apps = sum(1 for app in apps if not app.is_offboarded)
    if only_counts:
        context = {"counts": counts, "apps": apps, "live_apps": live_apps}
        return render(request, "tenants/overview.html#counts", context)
    newest = selectors.memory_list(scope=scope, page=1, page_size=8, place="overview")
    return render(
        request,
        "tenants/overview.html",
        {
            "counts": counts,
            "newest": newest.items,
            "apps": apps,
            "live_apps": live_apps,
            "search_form": BrowseForm(apps=scope.apps),
        },
    )
