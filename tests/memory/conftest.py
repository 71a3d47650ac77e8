from types import SimpleNamespace

import pytest

from memadmin.memory import services
from memadmin.memory.scope import scope_for_membership
from tests.factories import AppFactory, MembershipFactory, TenantFactory


@pytest.fixture
def world(db):
    """Two tenants x two apps; both tenants have an app called concierge_app."""
    acme = TenantFactory(name="Acme", slug="acme")
    globex = TenantFactory(name="Globex", slug="globex")
    w = SimpleNamespace(acme=acme, globex=globex)
    w.acme_concierge = AppFactory(tenant=acme, app_id="concierge_app", is_default=True)
    w.acme_sports = AppFactory(tenant=acme, app_id="sports_portal")
    w.globex_concierge = AppFactory(tenant=globex, app_id="concierge_app", is_default=True)
    w.globex_other = AppFactory(tenant=globex, app_id="other_app")
    for tenant in (acme, globex):
        for role in ("admin", "support", "viewer"):
            setattr(w, f"{tenant.slug}_{role}", MembershipFactory(tenant=tenant, role=role))
    w.scope = lambda membership: scope_for_membership(membership)
    return w


@pytest.fixture
def add():
    def _add(scope, app_id, user_id, text, **kwargs):
        records = services.memory_add(scope=scope, app_id=app_id, messages=text, user_id=user_id, **kwargs)
        return records[0]

    return _add
