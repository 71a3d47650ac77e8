"""Signed, expiring "your data" links for end users (django.core.signing + a revocable DataLink row)."""

from __future__ import annotations

from datetime import timedelta

from django.core import signing
from django.urls import reverse
from django.utils import timezone

from memadmin.memory.audit import audit_record
from memadmin.memory.capabilities import MANAGE_LINKS
from memadmin.memory.ids import clean_id
from memadmin.memory.scope import Scope
from tenants.models import DataLink

SALT = "memadmin.your-data-link"
DEFAULT_TTL = timedelta(days=7)
MAX_TTL = timedelta(days=90)


class LinkInvalid(Exception):
    """Expired, tampered with or revoked; the message is safe to show to the end user."""


def data_link_issue(*, scope: Scope, user_id: str, ttl: timedelta = DEFAULT_TTL) -> tuple[DataLink, str]:
    """Create a link for one end user of the scope's tenant; returns (row, path to the page)."""
    scope.require(MANAGE_LINKS)
    user_id = clean_id(user_id, "user_id")
    if not timedelta(minutes=1) <= ttl <= MAX_TTL:
        from memadmin.memory.errors import ValidationError

        raise ValidationError("ttl must be between 1 minute and 90 days.", field="ttl")
    link = DataLink.objects.create(
        tenant_id=scope.tenant_id, user_id=user_id, created_by=scope.actor, expires_at=timezone.now() + ttl
    )
    payload = {"l": str(link.pk), "t": scope.tenant_id, "u": user_id}
    token = signing.dumps(payload, salt=SALT, compress=True)
    audit_record(scope=scope, action="link.issue", user_id=user_id, details={"link": str(link.pk),
                 "expires_at": link.expires_at.isoformat()})  # fmt: skip
    return link, reverse("your_data", kwargs={"token": token})


def data_link_verify(token: str) -> DataLink:
    """The live DataLink behind a token, or LinkInvalid with a message for the person holding it."""
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise LinkInvalid("This link is not valid. Ask the company that sent it for a new one.") from None
    try:
        link = DataLink.objects.select_related("tenant").get(
            pk=payload["l"], tenant_id=payload["t"], user_id=payload["u"]
        )
    except (DataLink.DoesNotExist, KeyError, ValueError, TypeError):
        raise LinkInvalid("This link is not valid. Ask the company that sent it for a new one.") from None
    if link.revoked_at is not None:
        raise LinkInvalid("This link has been revoked. Ask the company that sent it for a new one.")
    if link.expires_at <= timezone.now():
        raise LinkInvalid("This link has expired. Ask the company that sent it for a new one.")
    return link


def data_link_revoke(*, scope: Scope, link_id) -> DataLink:
    from memadmin.memory.errors import NotFound

    scope.require(MANAGE_LINKS)
    try:
        link = DataLink.objects.for_tenant(scope.tenant_id).get(pk=link_id)
    except (DataLink.DoesNotExist, ValueError, signing.BadSignature):
        raise NotFound("Link not found.") from None
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
        audit_record(scope=scope, action="link.revoke", user_id=link.user_id, details={"link": str(link.pk)})
    return link
