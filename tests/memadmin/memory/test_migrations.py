"""The audit log and legal holds moved from tenants to the memory app with their rows, and the two legal-hold
booleans became LegalHold rows: run the migrations from the old layout on a database that has data."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

OLD = [("tenants", "0001_initial"), ("memory", None)]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


def _latest():
    return _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.fixture
def back_to_latest(transactional_db):
    yield
    _latest()  # the rest of the suite runs on the current schema


def test_rows_survive_the_move_and_the_flags_become_holds(back_to_latest):
    old = _migrate(OLD)
    Tenant, EndUser = old.get_model("tenants", "Tenant"), old.get_model("tenants", "EndUser")
    held = Tenant.objects.create(name="Held", slug="held", legal_hold=True)
    free = Tenant.objects.create(name="Free", slug="free")
    EndUser.objects.create(tenant=free, user_id="alice", legal_hold=True)
    EndUser.objects.create(tenant=free, user_id="bob")
    old.get_model("tenants", "AuditEvent").objects.create(
        tenant=free, actor="me", actor_kind="staff", role="admin", action="memory.list"
    )
    old.get_model("tenants", "LegalHold").objects.create(
        tenant=free, user_id="carol", reason="subpoena", created_by="legal"
    )

    new = _latest()
    AuditEvent, LegalHold = new.get_model("memory", "AuditEvent"), new.get_model("memory", "LegalHold")
    assert list(AuditEvent.objects.values_list("tenant_id", "action")) == [(free.pk, "memory.list")]
    holds = set(LegalHold.objects.filter(released_at__isnull=True).values_list("tenant_id", "app_id", "user_id"))
    assert holds == {(held.pk, None, ""), (free.pk, None, "alice"), (free.pk, None, "carol")}
    assert "legal_hold" not in {f.name for f in new.get_model("tenants", "Tenant")._meta.get_fields()}
    # The renamed tables keep handing out ids after the moved rows' (PostgreSQL: the identity sequence went along).
    moved = AuditEvent.objects.get()
    added = AuditEvent.objects.create(tenant_id=free.pk, actor="me", actor_kind="staff", role="admin", action="x")
    assert added.pk > moved.pk
    hold = LegalHold.objects.create(tenant_id=free.pk, user_id="dave", reason="r", created_by="legal")
    assert hold.pk > max(LegalHold.objects.exclude(pk=hold.pk).values_list("pk", flat=True))
    added.delete()
    hold.delete()

    # And back: the booleans return from the rows the forward step made.
    old = _migrate(OLD)
    assert old.get_model("tenants", "Tenant").objects.get(pk=held.pk).legal_hold
    assert old.get_model("tenants", "EndUser").objects.get(tenant_id=free.pk, user_id="alice").legal_hold
    assert old.get_model("tenants", "AuditEvent").objects.count() == 1


def test_existing_audit_events_get_distinct_event_ids(back_to_latest):
    old = _migrate([("memory", "0002_legal_hold_flags_to_rows"), ("tenants", "0005_invitation")])
    tenant = old.get_model("tenants", "Tenant").objects.create(name="T", slug="t")
    AuditEvent = old.get_model("memory", "AuditEvent")
    AuditEvent.objects.bulk_create(
        [AuditEvent(tenant=tenant, actor="me", actor_kind="staff", role="admin", action="memory.add") for _ in range(5)]
    )
    new = _migrate([("memory", "0003_audit_event_id"), ("tenants", "0005_invitation")])
    ids = list(new.get_model("memory", "AuditEvent").objects.values_list("event_id", flat=True))
    assert len(ids) == 5 and None not in ids and len(set(ids)) == 5
