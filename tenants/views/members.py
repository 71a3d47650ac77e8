"""Members (invite, change role, remove), open invitations and the tenant's agents, for tenant admins."""

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect

from memadmin.memory import selectors
from memadmin.memory.capabilities import MANAGE_MEMBERS, STAFF_ROLES, role_can
from memadmin.memory.filters import filter_from_fields
from tenants.forms import InvitationForm, RoleForm
from tenants.invitations import InvitationNotSent, invitation_cancel, invitation_create, invitation_resend
from tenants.models import Agent, Invitation, Membership, Role, Tenant
from tenants.views.common import TenantRequest, render_error, tenant_view


def _page(request: TenantRequest, invite_form=None, status=200) -> HttpResponse:
    tenant = request.tenant
    members = Membership.objects.for_tenant(tenant).select_related("user").order_by("user__username")
    invitations = Invitation.objects.filter(tenant=tenant, accepted_at=None, cancelled_at=None).select_related(
        "invited_by"
    )
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
        "invitations": invitations,
        "agents": agents,
        "invite_form": invite_form or InvitationForm(),
        "invitation_days": settings.MEMADMIN_INVITATION_DAYS,
        "now": timezone.now(),
        "roles": Role.choices,
    }, status=status)  # fmt: skip


@tenant_view
def members(request: TenantRequest) -> HttpResponse:
    return _page(request)


def _accept_url(request: TenantRequest) -> Callable[[str], str]:
    return lambda token: request.build_absolute_uri(reverse("invitation_accept", args=[token]))


@tenant_view
def member_add(request: TenantRequest) -> HttpResponse:
    """Invite by e-mail. The answer is the same whether or not the address has an account."""
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return _page(request, invite_form=form, status=400)
    email, role = form.cleaned_data["email"], form.cleaned_data["role"]
    try:
        invitation_create(scope=request.scope, tenant=request.tenant, email=email, role=role,
                          invited_by=request.user, accept_url=_accept_url(request))  # fmt: skip
    except InvitationNotSent as exc:
        return _not_sent(request, exc)
    messages.success(request, f"Invitation sent to {email} ({role}). They join when they accept it.")
    return redirect("members", tenant_slug=request.tenant.slug)


def _not_sent(request: TenantRequest, exc: InvitationNotSent) -> HttpResponse:
    """Saved but not mailed: the page says so (503, the mail server is the unavailable part); Resend retries."""
    messages.error(request, f"The invitation of {exc.invitation.email} is saved, but the e-mail could not be sent "
                            f"({exc}). Check the mail settings (EMAIL_HOST...), then use Resend.")  # fmt: skip
    return _page(request, status=503)


@tenant_view
def invitation_resend_view(request: TenantRequest, invitation_id) -> HttpResponse:
    try:
        invitation = invitation_resend(scope=request.scope, invitation_id=invitation_id,
                                       accept_url=_accept_url(request))  # fmt: skip
    except InvitationNotSent as exc:
        return _not_sent(request, exc)
    messages.success(request, f"Invitation sent again to {invitation.email}; the previous link no longer works.")
    return redirect("members", tenant_slug=request.tenant.slug)


@tenant_view
def invitation_cancel_view(request: TenantRequest, invitation_id) -> HttpResponse:
    invitation = invitation_cancel(scope=request.scope, invitation_id=invitation_id)
    messages.success(request, f"The invitation of {invitation.email} was withdrawn.")
    return redirect("members", tenant_slug=request.tenant.slug)


def _member_for(request: TenantRequest, member_id: int) -> Membership:
    """The one scoped fetch of a membership, locked for the change: another tenant's member does not exist here.

    The tenant's row is locked first, so changes to one tenant's members happen one after the other: the
    last-admin check reads the other memberships, and on PostgreSQL two admins demoting each other at once
    would each still see the other as admin (SQLite serialises all writers anyway)."""
    Tenant.objects.select_for_update().only("pk").get(pk=request.tenant.pk)
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
