"""Webhook fixtures: two tenants whose webhooks point at the real local receiver (``receiver``, tests/receiver.py)."""

from __future__ import annotations

import pytest

from tenants.scoping import scope_for_membership
from tenants.webhooks import services
from tests.factories import two_tenant_world


@pytest.fixture
def world(db):
    w = two_tenant_world()
    w.scope = lambda slug="acme", role="admin": scope_for_membership(getattr(w, f"{slug}_{role}"))
    return w


@pytest.fixture
def hook(world, receiver):
    """make(slug, **kw): a webhook of that tenant pointing at the receiver, listening to every event."""

    def make(slug="acme", events=None, **kwargs):
        kwargs.setdefault("name", f"{slug}-hook")
        return services.webhook_create(
            scope=world.scope(slug),
            url=kwargs.pop("url", receiver.url),
            event_types=events or list(services.EVENTS),
            **kwargs,
        )

    return make
