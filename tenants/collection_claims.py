"""Registering an existing Mem0 OSS collection as an app: the claim that proves the collection is the tenant's.

Every tenant shares the store, so "register the collection named X" alone would let any tenant admin take over
another company's agents' memories, written by Mem0 OSS before anyone registered them. Whoever runs those agents
can write to the store; the page asks them to put a token only this tenant is shown (an HMAC of the tenant and
the collection under the server's secret) in the key ``memadmin:claim:<collection>``."""

from __future__ import annotations

import hmac

from django.utils.crypto import salted_hmac

from memadmin.memory.collections import collection_claim_read
from tenants.models import Tenant


def collection_claim_token(*, tenant: Tenant, collection: str) -> str:
    return salted_hmac("memadmin.collection-claim", f"{tenant.pk}\x1f{collection}", algorithm="sha256").hexdigest()[:40]


def collection_claimed(*, tenant: Tenant, collection: str, store_name: str) -> bool:
    """Whether the claim key on the store ``store_name`` (the one the collection is on) holds this tenant's token."""
    stored = collection_claim_read(collection=collection, store_name=store_name)
    return stored is not None and hmac.compare_digest(
        stored.strip(), collection_claim_token(tenant=tenant, collection=collection)
    )
