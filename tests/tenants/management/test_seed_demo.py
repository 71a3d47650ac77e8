"""tenants/management/commands/seed_demo.py: the demo the README's run command starts with."""

from io import StringIO

from django.core.management import call_command

from memadmin.memory.consistency import index_health
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.selectors import memory_count
from tenants.models import App, Membership, Role, Tenant
from tenants.scoping import scope_for_membership


def test_seed_demo_fills_every_app_checks_its_index_and_is_idempotent(db):
    out = StringIO()
    call_command("seed_demo", "--per-user", "1", stdout=out)
    assert "acme-admin" in out.getvalue() and "platform" in out.getvalue()
    for tenant in Tenant.objects.all():
        scope = scope_for_membership(Membership.objects.get(tenant=tenant, role=Role.ADMIN))
        for app in App.objects.filter(tenant=tenant):
            stored = memory_count(scope=scope, filters=filter_from_fields(app_id=app.app_id))
            health = index_health(place=app.app_ref().place)
            # A real pass, not the count the index made before any memory was written.
            assert stored > 0 and health.healthy and health.mode in ("count", "membership")
            assert health.keys == stored and health.drift == 0
    again = StringIO()
    call_command("seed_demo", "--per-user", "1", stdout=again)
    assert again.getvalue().count("already seeded, skipping") == Tenant.objects.count()
