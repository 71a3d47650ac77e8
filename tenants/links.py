"""Expiring, revocable "your data" links for end users.

The token in the URL is 256 random bits and means nothing by itself: the DataLink row
holds its SHA-256, the tenant, the user_id and the apps. (The first version signed
{link, tenant, user_id} into the URL: readable by anyone who saw it.) A plain hash,
not a slow password hash, is right for a random secret of this size: there is
nothing to brute-force, and the lookup stays one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from memadmin.memory.capabilities import MANAGE_LINKS
from memadmin.memory.errors import NotFound, ValidationError
from memadmin.memory.ids import clean_id
from memadmin.memory.scope import Scope
from memadmin.memory.services import audit_record
from tenants.models import DataLink

DEFAULT_TTL = timedelta(days=7)
MAX_TTL = timedelta(days=90)
# "Last used" is for the Data links page; every request of the person's page must not cost a write.
LAST_USED_GRANULARITY = timedelta(minutes=1)


class LinkInvalid(Exception):
    """Expired, tampered with or revoked; the message is safe to show to the end user."""


def data_link_issue(*, scope: Scope, user_id: str, ttl: timedelta = DEFAULT_TTL) -> tuple[DataLink, str]:
    """Create a link for one end user of the scope's tenant; returns (row, path to the page)."""
    scope.require(MANAGE_LINKS)
    user_id = clean_id(user_id, "user_id")
    if not timedelta(minutes=1) <= ttl <= MAX_TTL:
        raise ValidationError("ttl must be between 1 minute and 90 days.", field="ttl")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        link = DataLink.objects.create(
            tenant_id=scope.tenant_id,
            user_id=user_id,
            created_by=scope.actor,
            expires_at=timezone.now() + ttl,
            token_hash=token_digest(token),
        )
        # The issuer's apps: an app-restricted key's, or all the tenant's live apps for staff.
        link.apps.set([app.pk for app in scope.apps])
    audit_record(
        scope=scope,
        action="link.issue",
        user_id=user_id,
        details={"link": str(link.pk), "expires_at": link.expires_at.isoformat()},
    )
    return link, reverse("your_data", kwargs={"token": token})


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def data_link_verify(token: str) -> DataLink:
    """The live DataLink behind a token, or LinkInvalid with a message for the person holding it."""
    try:
        link = DataLink.objects.select_related("tenant").get(token_hash=token_digest(token))
    except DataLink.DoesNotExist:
        raise LinkInvalid("This link is not valid. Ask the company that sent it for a new one.") from None
    if link.revoked_at is not None:
        raise LinkInvalid("This link has been revoked. Ask the company that sent it for a new one.")
    now = timezone.now()
    if link.expires_at <= now:
        raise LinkInvalid("This link has expired. Ask the company that sent it for a new one.")
    if link.last_used_at is None or now - link.last_used_at >= LAST_USED_GRANULARITY:
        DataLink.objects.filter(pk=link.pk).update(last_used_at=now)
        link.last_used_at = now
    return link


def data_link_revoke(*, scope: Scope, link_id) -> DataLink:
    scope.require(MANAGE_LINKS)
    try:
        link = DataLink.objects.for_tenant(scope.tenant_id).get(pk=link_id)
    except (DataLink.DoesNotExist, ValueError):
        raise NotFound("Link not found.") from None
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
        audit_record(scope=scope, action="link.revoke", user_id=link.user_id, details={"link": str(link.pk)})
    return link
