"""Accepting an invitation: the link from the e-mail, for a signed-in account or a new one."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from tenants.forms import NewAccountForm
from tenants.http import client_ip
from tenants.invitations import (
    InvitationForAnotherAddress,
    InvitationInvalid,
    invitation_accept,
    invitation_is_for,
    invitation_verify,
)
from tenants.models import Membership


def _invalid(request: HttpRequest, exc: InvitationInvalid) -> HttpResponse:
    return render(request, "invitations/invalid.html", {"message": str(exc)}, status=exc.status)


@require_http_methods(["GET", "HEAD", "POST"])
def accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = invitation_verify(token)
    except InvitationInvalid as exc:
        return _invalid(request, exc)
    context = {"invitation": invitation, "token": token}
    if request.user.is_authenticated:
        if not invitation_is_for(invitation, request.user):
            return _another_address(request, context)
        if request.method == "POST":
            return _join(request, token, request.user)
        return render(request, "invitations/accept.html", context)
    form = NewAccountForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "invitations/accept.html", {**context, "form": form}, status=400)
        if get_user_model().objects.filter(email__iexact=invitation.email).exists():
            # Only the holder of the link (the address's owner) sees this.
            form.add_error(
                None,
                f"An account with the address {invitation.email} already exists: sign in with it "
                "to accept the invitation.",
            )
            return render(request, "invitations/accept.html", {**context, "form": form}, status=400)
        try:
            with transaction.atomic():  # the account exists only if the invitation still takes it
                user = form.save(commit=False)
                user.email = invitation.email
                user.save()
                membership = invitation_accept(token=token, user=user, ip=client_ip(request))
        except InvitationInvalid as exc:  # used or withdrawn meanwhile (a double submit): no orphan account
            return _invalid(request, exc)
        return _joined(request, user, membership)
    return render(request, "invitations/accept.html", {**context, "form": form})


def _another_address(request: HttpRequest, context: dict) -> HttpResponse:
    """Shown instead of the accept button, and answered to the POST (nothing joins): sign out, then sign in
    with the invited address."""
    return render(request, "invitations/accept.html", {**context, "another_address": True}, status=403)


def _join(request: HttpRequest, token: str, user) -> HttpResponse:
    try:
        membership = invitation_accept(token=token, user=user, ip=client_ip(request))
    except InvitationForAnotherAddress as exc:  # the address changed between the check and the lock
        return _another_address(request, {"invitation": exc.invitation, "token": token})
    except InvitationInvalid as exc:
        return _invalid(request, exc)
    return _joined(request, user, membership)


def _joined(request: HttpRequest, user, membership: Membership) -> HttpResponse:
    if not request.user.is_authenticated:
        auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    messages.success(request, f"You are a member of {membership.tenant.name} ({membership.role}).")
    return redirect("overview", tenant_slug=membership.tenant.slug)
