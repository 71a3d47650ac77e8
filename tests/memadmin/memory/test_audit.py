"""memadmin/memory/audit.py: the people an audit row names, bounded in its details, complete in its index."""

import time

from memadmin.memory.audit import MAX_IDS, audit_record
from memadmin.memory.models import AuditEvent, AuditSubject
from tenants.transparency import person_accesses


def test_a_row_naming_many_people_keeps_a_bounded_list_and_an_index_row_each(world):
    scope = world.admin(world.acme)
    people = {f"person-{n:03}": n % 3 + 1 for n in range(250)}
    event = audit_record(scope=scope, action="memory.list", subjects=people, details={"place": "memory browser"})
    assert len(event.details["user_ids"]) == MAX_IDS and event.details["user_ids_truncated"] == 250
    assert AuditSubject.objects.filter(event=event).count() == 250
    assert AuditSubject.objects.get(event=event, user_id="person-249").count == 249 % 3 + 1
    assert AuditSubject.objects.for_tenant(world.globex).count() == 0


def test_the_events_own_person_is_not_named_twice_and_details_user_ids_are_enough(world):
    scope = world.admin(world.acme)
    event = audit_record(scope=scope, action="memory.export", user_id="alice", subjects={"alice": 2, "bob": 1})
    assert list(AuditSubject.objects.filter(event=event).values_list("user_id", flat=True)) == ["bob"]
    # A writer that only knows details (the export-file download row) names its people the same way.
    download = audit_record(scope=scope, action="export.download", details={"user_ids": ["carol", "dave"]})
    assert sorted(AuditSubject.objects.filter(event=download).values_list("user_id", flat=True)) == ["carol", "dave"]
    [line] = person_accesses(tenant=world.acme, user_id="carol")["accesses"]
    assert line["who"] == "An admin (acme-admin)" and line["what"] == "downloaded an export file holding your memories"


def test_the_persons_list_reads_only_their_rows(world):
    """5,000 page views of other people and 50 that named alice: her list costs two index range reads."""
    scope = world.admin(world.acme)
    events = AuditEvent.objects.bulk_create(
        AuditEvent(
            tenant_id=world.acme.pk,
            actor="acme-viewer",
            actor_kind="staff",
            role="viewer",
            action="memory.list",
            details={"place": "memory browser"},
        )
        for _ in range(5_050)
    )
    subjects = [
        AuditSubject(event=e, tenant_id=world.acme.pk, user_id=f"other-{i % 500}", count=3)
        for i, e in enumerate(events[:5_000])
    ]
    subjects += [AuditSubject(event=e, tenant_id=world.acme.pk, user_id="alice", count=2) for e in events[5_000:]]
    AuditSubject.objects.bulk_create(subjects, batch_size=2000)
    audit_record(scope=scope, action="memory.get", user_id="alice")
    started = time.perf_counter()
    found = person_accesses(tenant=world.acme, user_id="alice")
    elapsed = time.perf_counter() - started
    assert found["access_total"] == 51
    [listed] = [g for g in found["accesses"] if g["action"] == "memory.list"]
    assert listed["times"] == 50 and listed["in_all"] == 100
    assert elapsed < 0.5, elapsed
    plan = str(AuditSubject.objects.for_tenant(world.acme).filter(user_id="alice").explain())
    assert "audit_subject_person" in plan or "Index" in plan, plan  # SQLite: SEARCH ... USING INDEX
