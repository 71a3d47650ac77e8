"""Members (invite, change role, remove) and the tenant's agents, for tenant admins."""

from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tenants.forms import MemberAddForm, RoleForm
from tenants.models import Agent, Membership, Role
from tenants.views.common import render_error, tenant_view


def _page(request, membership, add_form=None, status=200):
    tenant = membership.tenant
    members = Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username")
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
def members(request, membership):
    return _page(request, membership)


@tenant_view
def member_add(request, membership):
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        return _page(request, membership, add_form=form, status=400)
    user, role = form.cleaned_data["username"], form.cleaned_data["role"]
    _, created = Membership.objects.get_or_create(user=user, tenant=membership.tenant, defaults={"role": role})
    if created:
        messages.success(request, f"{user.get_username()} is now a member ({role}).")
    else:
        messages.info(request, f"{user.get_username()} was already a member; use the role menu to change the role.")
    return redirect("members", tenant_slug=membership.tenant.slug)


def _keeps_an_admin(tenant, changing: Membership, new_role: str | None) -> bool:
    """A tenant must never lose its last admin: nobody could manage it from the dashboard afterwards."""
    if changing.role != Role.ADMIN or new_role == Role.ADMIN:
        return True
    return Membership.objects.filter(tenant=tenant, role=Role.ADMIN).exclude(pk=changing.pk).exists()


@tenant_view
def member_role(request, membership, member_id):
    form = RoleForm(request.POST)
    if not form.is_valid():
        return render_error(request, 400, "Choose admin, support or viewer.", form=form)
    with transaction.atomic():
        member = get_object_or_404(Membership.objects.select_for_update(), pk=member_id, tenant=membership.tenant)
        role = form.cleaned_data["role"]
        if not _keeps_an_admin(membership.tenant, member, role):
            return render_error(request, 409, "This is the last admin of the tenant; make someone else admin first.")
        member.role = role
        member.save(update_fields=["role"])
    messages.success(request, f"{member.user.get_username()} is now {role}.")
    return redirect("members", tenant_slug=membership.tenant.slug)


@tenant_view
def member_remove(request, membership, member_id):
    with transaction.atomic():
        member = get_object_or_404(Membership.objects.select_for_update(), pk=member_id, tenant=membership.tenant)
        if not _keeps_an_admin(membership.tenant, member, None):
            return render_error(request, 409, "This is the last admin of the tenant; make someone else admin first.")
        member.delete()
    messages.success(request, f"{member.user.get_username()} was removed from {membership.tenant.name}.")
    if request.htmx:  # hx-confirm asked first; now load the page afresh
        return HttpResponseClientRedirect(reverse("members", args=[membership.tenant.slug]))
    return redirect("members", tenant_slug=membership.tenant.slug)
