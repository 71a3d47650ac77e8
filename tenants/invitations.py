"""Invitations: the only way into a tenant. An admin names an e-mail address and a role; the person
gets a link, and becomes a member only by accepting it (signed in, or with a new account).

The admin's side never learns whether an account with that address exists: the same answer, the
same e-mail, whatever the address. (The first version added any existing account by username
without its owner's consent, and its "no such account" error was an oracle.)
"""

from __future__ import annotations

import logging
import secrets
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from memadmin.memory.capabilities import MANAGE_MEMBERS
from memadmin.memory.errors import NotFound
from memadmin.memory.scope import Scope
from memadmin.memory.services import audit_record
from tenants.links import token_digest
from tenants.models import Invitation, Membership, Tenant
from tenants.scoping import scope_for_membership

logger = logging.getLogger("memadmin.invitations")


class InvitationInvalid(Exception):
    """Unknown (404), or expired, cancelled or used (410); the message is safe to show to whoever holds the link."""

    def __init__(self, message: str, status: int = 410):
        super().__init__(message)
        self.status = status


class InvitationForAnotherAddress(InvitationInvalid):
    """The signed-in account's address is not the invited one: the link alone proves nothing (a forwarded
    e-mail, a shared screen, a mail gateway that opens links), so it never joins another account."""

    def __init__(self, invitation: Invitation):
        super().__init__(
            "This invitation is for another address. Sign out, then open the link again and sign in with the "
            "invited address (or create an account for it).",
            status=403,
        )
        self.invitation = invitation


def _address(value: str | None) -> str:
    return (value or "").strip().lower()


def invitation_is_for(invitation: Invitation, user) -> bool:
    """Whether ``user``'s e-mail is the invited address (trimmed, case-insensitive); no address matches nothing."""
    return bool(_address(user.email)) and _address(user.email) == _address(invitation.email)


class InvitationNotSent(Exception):
    """The invitation is saved but its e-mail could not be handed to the mail server (resend later)."""

    def __init__(self, invitation: Invitation, reason: str):
        super().__init__(reason)
        self.invitation = invitation


def _send(*, invitation: Invitation, accept_url: str) -> None:
    context = {"invitation": invitation, "accept_url": accept_url, "inviter": invitation.invited_by}
    try:
        send_mail(
            subject=f"You are invited to {invitation.tenant.name} on memadmin",
            message=render_to_string("invitations/email.txt", context),
            from_email=None,  # DEFAULT_FROM_EMAIL
            recipient_list=[invitation.email],
        )
    except (smtplib.SMTPException, OSError) as exc:  # OSError: refused, unreachable, timed out
        logger.warning("Invitation %s could not be e-mailed: %s", invitation.pk, exc)
        raise InvitationNotSent(invitation, str(exc) or exc.__class__.__name__) from exc


def _issue(invitation: Invitation) -> str:
    """A fresh token and expiry (a resend makes the previous link stop working)."""
    token = secrets.token_urlsafe(32)
    invitation.token_hash = token_digest(token)
    invitation.expires_at = timezone.now() + timedelta(days=settings.MEMADMIN_INVITATION_DAYS)
    invitation.sent_at = timezone.now()
    return token


def _audited(invitation: Invitation) -> dict:
    # The address, not only the row: the row can go (the tenant's cascade) and the log must still say who.
    return {"invitation": invitation.pk, "email": invitation.email, "role": invitation.role}


def invitation_create(*, scope: Scope, tenant, email: str, role: str, invited_by, accept_url) -> Invitation:
    """Invite ``email`` as ``role``; an open invitation to the same address is renewed, not doubled.

    ``accept_url(token)`` builds the absolute link for the e-mail (the view knows the host)."""
    scope.require(MANAGE_MEMBERS)  # service-level backstop of the dashboard's table
    email = email.strip()
    with transaction.atomic():
        # The tenant's row is the lock: with no open invitation yet there is no row to lock, and on PostgreSQL
        # two requests at once would each create one.
        Tenant.objects.select_for_update().only("pk").get(pk=tenant.pk)
        invitation = (
            Invitation.objects.select_for_update()
            .filter(tenant=tenant, email__iexact=email, accepted_at=None, cancelled_at=None)
            .first()
        ) or Invitation(tenant=tenant, email=email)
        invitation.role, invitation.invited_by = role, invited_by
        token = _issue(invitation)
        invitation.save()
    audit_record(scope=scope, action="invitation.create", details=_audited(invitation))
    _send(invitation=invitation, accept_url=accept_url(token))
    return invitation


def _open_invitation(*, scope: Scope, invitation_id: int) -> Invitation:
    try:
        return Invitation.objects.select_related("tenant").get(
            pk=invitation_id, tenant_id=scope.tenant_id, accepted_at=None, cancelled_at=None
        )
    except Invitation.DoesNotExist:
        raise NotFound("Invitation not found.") from None


def invitation_resend(*, scope: Scope, invitation_id: int, accept_url) -> Invitation:
    scope.require(MANAGE_MEMBERS)
    invitation = _open_invitation(scope=scope, invitation_id=invitation_id)
    token = _issue(invitation)
    invitation.save(update_fields=["token_hash", "expires_at", "sent_at"])
    audit_record(scope=scope, action="invitation.resend", details=_audited(invitation))
    _send(invitation=invitation, accept_url=accept_url(token))
    return invitation


def invitation_cancel(*, scope: Scope, invitation_id: int) -> Invitation:
    scope.require(MANAGE_MEMBERS)
    invitation = _open_invitation(scope=scope, invitation_id=invitation_id)
    invitation.cancelled_at = timezone.now()
    invitation.save(update_fields=["cancelled_at"])
    audit_record(scope=scope, action="invitation.cancel", details=_audited(invitation))
    return invitation


def invitation_verify(token: str) -> Invitation:
    """The open invitation behind a link, or InvitationInvalid saying why, for the person holding it."""
    try:
        invitation = Invitation.objects.select_related("tenant", "invited_by").get(token_hash=token_digest(token))
    except Invitation.DoesNotExist:
        raise InvitationInvalid(
            "This invitation link is not valid. It may have been replaced by a newer one: use the most recent "
            "e-mail, or ask the person who invited you to send it again.",
            status=404,
        ) from None
    if invitation.accepted_at is not None:
        raise InvitationInvalid("This invitation has already been used. Sign in to reach the tenant.")
    if invitation.cancelled_at is not None:
        raise InvitationInvalid("This invitation was withdrawn. Ask the person who invited you if that is a mistake.")
    if invitation.expires_at <= timezone.now():
        raise InvitationInvalid("This invitation has expired. Ask the person who invited you to send a new one.")
    return invitation


def invitation_accept(*, token: str, user, ip: str | None = None) -> Membership:
    """Turn the invitation into a membership of ``user`` (who is already a member keeps their role), only if
    ``user``'s e-mail is the invited address."""
    with transaction.atomic():
        invitation = invitation_verify(token)
        # Lock and re-check: two tabs accepting at once must not both succeed.
        invitation = Invitation.objects.select_for_update().select_related("tenant").get(pk=invitation.pk)
        if not invitation.is_open:
            raise InvitationInvalid("This invitation has already been used. Sign in to reach the tenant.")
        if not invitation_is_for(invitation, user):
            raise InvitationForAnotherAddress(invitation)
        membership, created = Membership.objects.get_or_create(
            user=user, tenant=invitation.tenant, defaults={"role": invitation.role}
        )
        invitation.accepted_at, invitation.accepted_by = timezone.now(), user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(
            scope=scope_for_membership(membership, ip=ip),
            action="invitation.accept",
            details={
                "invitation": invitation.pk,
                "email": invitation.email,
                "role": membership.role,
                "invited_as": invitation.role,
                "new_member": created,
            },
        )
    return membership
