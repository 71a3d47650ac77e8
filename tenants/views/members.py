"""Members (invite, change role, remove), open invitations and the tenant's agents, for tenant admins."""

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRedirect

from memadmin.mail import links_shown_to_the_inviter
from memadmin.memory import selectors
from memadmin.memory.capabilities import DESCRIPTIONS, capabilities_of
from memadmin.memory.filters import filter_from_fields
from tenants.forms import InvitationForm, RoleForm
from tenants.invitations import InvitationNotSent, invitation_cancel, invitation_create, invitation_resend
from tenants.memberships import (
    LAST_ADMIN,
    managing_roles,
    membership_keeps_an_admin,
    membership_remove,
    membership_role_change,
)
from tenants.models import Agent, Invitation, Membership, Role
from tenants.views.common import TenantRequest, render_error, tenant_view


def _page(request: TenantRequest, invite_form=None, status=200, handover=None) -> HttpResponse:
    tenant = request.tenant
    members = list(Membership.objects.for_tenant(tenant).select_related("user").order_by("user__username"))
    admins = [m.pk for m in members if m.role in managing_roles()]
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
            agents.append(
                {
                    "app_id": app.app_id,
                    "agent_id": name,
                    "count": seen.get(name, 0),
                    "description": agent.description if agent else "",
                }
            )
    response = render(
        request,
        "tenants/members.html",
        {
            "members": members,
            "last_admin": admins[0] if len(admins) == 1 else None,  # offered no change the server would refuse
            "invitations": invitations,
            "agents": agents,
            "invite_form": invite_form or InvitationForm(),
            "invitation_days": settings.MEMADMIN_INVITATION_DAYS,
            "now": timezone.now(),
            "roles": Role.choices,
            "handover": handover,
        },
        status=status,
    )
    if handover:
        add_never_cache_headers(response)  # the link is a membership: no cache, no back-button copy
    return response


@tenant_view
def members(request: TenantRequest) -> HttpResponse:
    return _page(request)


def _accept_url(request: TenantRequest, links: list[str]) -> Callable[[str], str]:
    """Builds the link for the e-mail, and keeps it in ``links`` for the admin when no mail leaves the server."""

    def build(token: str) -> str:
        links.append(request.build_absolute_uri(reverse("invitation_accept", args=[token])))
        return links[-1]

    return build


def _sent(request: TenantRequest, invitation, links: list[str], message: str) -> HttpResponse:
    """With a mail server, back to the page; without one, the link is shown once, to this admin only, rendered
    in this response (a redirect would carry it through the session or a cookie)."""
    if not links_shown_to_the_inviter():
        messages.success(request, message)
        return redirect("members", tenant_slug=request.tenant.slug)
    return _page(request, handover={"email": invitation.email, "url": links[-1], "role": invitation.role})


@tenant_view
def member_add(request: TenantRequest) -> HttpResponse:
    """Invite by e-mail. The answer is the same whether or not the address has an account."""
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return _page(request, invite_form=form, status=400)
    email, role = form.cleaned_data["email"], form.cleaned_data["role"]
    links: list[str] = []
    try:
        invitation = invitation_create(
            scope=request.scope,
            tenant=request.tenant,
            email=email,
            role=role,
            invited_by=request.user,
            accept_url=_accept_url(request, links),
        )
    except InvitationNotSent as exc:
        return _not_sent(request, exc)
    return _sent(request, invitation, links, f"Invitation sent to {email} ({role}). They join when they accept it.")


def _not_sent(request: TenantRequest, exc: InvitationNotSent) -> HttpResponse:
    """Saved but not mailed: the page says so (503, the mail server is the unavailable part); Resend retries."""
    messages.error(
        request,
        f"The invitation of {exc.invitation.email} is saved, but the e-mail could not be sent "
        f"({exc}). Check the mail settings (EMAIL_HOST...), then use Resend.",
    )
    return _page(request, status=503)


@tenant_view
def invitation_resend_view(request: TenantRequest, invitation_id) -> HttpResponse:
    links: list[str] = []
    try:
        invitation = invitation_resend(
            scope=request.scope, invitation_id=invitation_id, accept_url=_accept_url(request, links)
        )
    except InvitationNotSent as exc:
        return _not_sent(request, exc)
    return _sent(
        request, invitation, links, f"Invitation sent again to {invitation.email}; the previous link no longer works."
    )


@tenant_view
def invitation_cancel_view(request: TenantRequest, invitation_id) -> HttpResponse:
    invitation = invitation_cancel(scope=request.scope, invitation_id=invitation_id)
    messages.success(request, f"The invitation of {invitation.email} was withdrawn.")
    return redirect("members", tenant_slug=request.tenant.slug)


def _confirm(request: TenantRequest, member: Membership, *, role: str | None) -> HttpResponse:
    """The question asked before the change, on a page of its own (JS-free) — hx-confirm asks it with JS.
    What the new role gains and loses comes from the one capability table."""
    if not membership_keeps_an_admin(tenant=request.tenant, changing=member, new_role=role):
        return render_error(request, 409, LAST_ADMIN)  # said before the question, not after the answer
    before, after = capabilities_of(member.role), capabilities_of(role) if role else frozenset()
    return render(
        request,
        "tenants/member_confirm.html",
        {
            "member": member,
            "role": role,
            "role_label": Role(role).label if role else "",
            "gains": [text for cap, text in DESCRIPTIONS.items() if cap in after - before],
            "losses": [text for cap, text in DESCRIPTIONS.items() if cap in before - after],
        },
    )


def _done(request: TenantRequest, message: str) -> HttpResponse:
    messages.success(request, message)
    if request.htmx:  # hx-confirm asked first; now load the page afresh
        return HttpResponseClientRedirect(reverse("members", args=[request.tenant.slug]))
    return redirect("members", tenant_slug=request.tenant.slug)


@tenant_view
def member_role(request: TenantRequest, member_id) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        return render_error(request, 400, "Choose admin, support or viewer.", form=form)
    role = form.cleaned_data["role"]
    if request.POST.get("confirm") != "yes":
        member = get_object_or_404(Membership.objects.for_tenant(request.tenant).select_related("user"), pk=member_id)
        if member.role == role:
            return redirect("members", tenant_slug=request.tenant.slug)
        return _confirm(request, member, role=role)
    member = membership_role_change(scope=request.scope, member_id=member_id, role=role)
    return _done(request, f"{member.user.get_username()} is now {role}.")


@tenant_view
def member_remove(request: TenantRequest, member_id) -> HttpResponse:
    if request.POST.get("confirm") != "yes":
        member = get_object_or_404(Membership.objects.for_tenant(request.tenant).select_related("user"), pk=member_id)
        return _confirm(request, member, role=None)
    member = membership_remove(scope=request.scope, member_id=member_id)
    return _done(request, f"{member.user.get_username()} was removed from {request.tenant.name}.")
