"""Members (invite, change role, remove) and the tenant's agents, for tenant admins."""

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from memadmin.memory import selectors
from memadmin.memory.capabilities import MANAGE_MEMBERS, STAFF_ROLES, role_can
from memadmin.memory.filters import filter_from_fields
from tenants.forms import MemberAddForm, RoleForm
from tenants.models import Agent, Membership, Role
from tenants.views.common import TenantRequest, render_error, tenant_view


def _page(request: TenantRequest, add_form=None, status=200) -> HttpResponse:
    tenant = request.tenant
    members = Membership.objects.for_tenant(tenant).select_related("user").order_by("user__username")
    agents = []
    declared = {}
    for agent in Agent.objects.filter(app__tenant=tenant).select_related("app"):
        declared[(agent.app.app_id, agent.agent_id)] = agent
    for app in request.scope.apps:
        counts = selectors.memory_counts(scope=request.scope, filters=filter_from_fields(app_id=app.app_id), top=500)
        seen = dict(counts.per_agent)
        names = sorted(set(seen) | {a for (app_id, a) in declared if app_id == app.app_id})
        for name in names:
            agent = declared.get((app.app_id, name))
            agents.append({"app_id": app.app_id, "agent_id": name, "count": seen.get(name, 0),
                           "description": agent.description if agent else ""})  # fmt: skip
    return render(request, "tenants/members.html", {
        "members": members,
        "agents": agents,
        "add_form": add_form or MemberAddForm(),
        "roles": Role.choices,
    }, status=status)  # fmt: skip


@tenant_view
def members(request: TenantRequest) -> HttpResponse:
    return _page(request)


@tenant_view
def member_add(request: TenantRequest) -> HttpResponse:
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        return _page(request, add_form=form, status=400)
    user, role = form.cleaned_data["username"], form.cleaned_data["role"]
    _, created = Membership.objects.get_or_create(user=user, tenant=request.tenant, defaults={"role": role})
    if created:
        messages.success(request, f"{user.get_username()} is now a member ({role}).")
    else:
        messages.info(request, f"{user.get_username()} was already a member; use the role menu to change the role.")
    return redirect("members", tenant_slug=request.tenant.slug)


def _member_for(request: TenantRequest, member_id: int) -> Membership:
    """The one scoped fetch of a membership, locked for the change: another tenant's member does not exist here."""
    return get_object_or_404(Membership.objects.for_tenant(request.tenant).select_for_update(), pk=member_id)


def _keeps_an_admin(tenant, changing: Membership, new_role: str | None) -> bool:
    """A tenant must never lose its last admin: nobody could manage it from the dashboard afterwards."""
    if not role_can(changing.role, MANAGE_MEMBERS) or (new_role and role_can(new_role, MANAGE_MEMBERS)):
        return True
    managers = [role for role in STAFF_ROLES if role_can(role, MANAGE_MEMBERS)]
    return Membership.objects.for_tenant(tenant).filter(role__in=managers).exclude(pk=changing.pk).exists()


@tenant_view
def member_role(request: TenantRequest, member_id) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        return render_error(request, 400, "Choose admin, support or viewer.", form=form)
    with transaction.atomic():
        member = _member_for(request, member_id)
        role = form.cleaned_data["role"]
        if not _keeps_an_admin(request.tenant, member, role):
            return render_error(request, 409, "This is the last admin of the tenant; make someone else admin first.")
        member.role = role
        member.save(update_fields=["role"])
    messages.success(request, f"{member.user.get_username()} is now {role}.")
    return redirect("members", tenant_slug=request.tenant.slug)


@tenant_view
def member_remove(request: TenantRequest, member_id) -> HttpResponse:
    with transaction.atomic():
        member = _member_for(request, member_id)
        if not _keeps_an_admin(request.tenant, member, None):
            return render_error(request, 409, "This is the last admin of the tenant; make someone else admin first.")
        member.delete()
    messages.success(request, f"{member.user.get_username()} was removed from {request.tenant.name}.")
    if request.htmx:  # hx-confirm asked first; now load the page afresh
        return HttpResponseClientRedirect(reverse("members", args=[request.tenant.slug]))
    return redirect("members", tenant_slug=request.tenant.slug)
