"""Offboarding one app, run in-process, from the request to the receipt: tenants/jobs/services.py
job_offboard_app (one job per app, grace period, legal holds, admins only), tenants/jobs/runners.py run_job,
the resumable engine it drives (memadmin/memory/bulk.py app_drop) and manage.py offboard. One feature, one
module: it tests the request as much as the runner, so it is not test_runners.py.
tests/tenants/jobs/test_tasks.py runs it in a real worker."""

import gzip
import io
import json
import threading

import pytest
from django.core.management.base import CommandError
from django.db import connection

from memadmin.memory import bulk, services, store
from memadmin.memory.errors import Conflict, NotFound, PermissionDenied
from memadmin.memory.models import AuditEvent, LegalHold
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.jobs.services import job_cancel, job_offboard_app
from tenants.models import App
from tests.support.jobs import keys_of
from tests.support.stores import on_both_stores


@on_both_stores
def test_offboard_deletes_everything_and_leaves_a_receipt(world, load, acme_valkey):
    load(world.concierge, 2500, runs=30)
    load(world.sports, 40, seed=7)
    job, created = job_offboard_app(scope=world.scope(), app_id="concierge_app")
    assert created and job.state == Job.State.SCHEDULED
    assert App.objects.get(pk=world.concierge.pk).status == "frozen"

    assert run_job(job.pk) == Job.State.SUCCEEDED

    job.refresh_from_db()
    receipt = job.receipt
    line = receipt["per_app"]["concierge_app"]
    assert (line["memories"], line["history_rows"], line["messages"], line["remaining"]) == (2500, 2500, 30, 0)
    assert receipt["remaining"] == 0 and receipt["verified_at"]
    assert receipt["requested_by"] == world.admin.user.username
    assert job.done == job.total == 2500
    assert "memory number" not in json.dumps(receipt)  # counts, never the text
    assert keys_of(acme_valkey, world.concierge) == 0
    assert keys_of(acme_valkey, world.sports) == 40  # the other app is untouched
    assert not store.history_db_path(world.concierge.collection_name).exists()
    with pytest.raises(Exception, match="(?i)unknown index|no such index"):
        acme_valkey.execute_command("FT.INFO", world.concierge.collection_name)
    assert App.objects.get(pk=world.concierge.pk).status == "offboarded"
    event = AuditEvent.objects.get(action="app.offboard")
    assert event.details["job"] == str(job.pk) and event.count == 2500
    # Each of the app's 50 people finds the offboarding on their own "who looked at your data" list, with how
    # many of their memories it deleted (counted before the drop).
    from memadmin.memory.models import AuditSubject
    from tenants.transparency import person_accesses

    assert AuditSubject.objects.filter(event=event).count() == 50 and len(event.details["user_ids"]) == 50
    assert AuditSubject.objects.get(event=event, user_id="user-7").count == 50
    [line] = person_accesses(tenant=world.acme, user_id="user-7")["accesses"]
    assert line["what"] == "deleted your memories when an app was closed down (offboarded)"


def test_offboarded_app_is_a_tombstone(world, load):
    load(world.concierge, 10)
    job, _ = job_offboard_app(scope=world.scope(), app_id="concierge_app")
    run_job(job.pk)
    # Not in any scope any more: writes and a second offboarding find nothing.
    with pytest.raises(NotFound):
        services.memory_add(scope=world.scope(), app_id="concierge_app", messages="hi", user_id="u1")
    with pytest.raises(NotFound):
        job_offboard_app(scope=world.scope(), app_id="concierge_app")


def test_second_request_returns_the_first_job(world, load):
    load(world.concierge, 10)
    first, created = job_offboard_app(scope=world.scope(), app_id="concierge_app", grace_hours=24)
    second, created_again = job_offboard_app(scope=world.scope(), app_id="concierge_app")
    assert created and not created_again and first.pk == second.pk
    assert Job.objects.filter(kind="offboard_app").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_make_one_job(world):
    results, errors = [], []
    barrier = threading.Barrier(4)

    def request():
        try:
            barrier.wait()
            results.append(job_offboard_app(scope=world.scope(), app_id="concierge_app", grace_hours=1)[0].pk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert Job.objects.filter(kind="offboard_app").count() == 1


def test_grace_period_freezes_then_cancel_unfreezes(world, load):
    load(world.concierge, 5)
    job, _ = job_offboard_app(scope=world.scope(), app_id="concierge_app", grace_hours=24)
    assert job.run_after > job.created_at
    with pytest.raises(Conflict, match="frozen"):
        services.memory_add(scope=world.scope(), app_id="concierge_app", messages="hi", user_id="u1")
    assert run_job(job.pk) == "skipped"  # not due yet
    job_cancel(scope=world.scope(), job=job)
    job.refresh_from_db()
    assert job.state == "cancelled"
    assert App.objects.get(pk=world.concierge.pk).status == "active"
    assert run_job(job.pk) == "skipped"


def test_only_admins_offboard(world):
    for role in ("support", "viewer"):
        with pytest.raises(PermissionDenied):
            job_offboard_app(scope=world.scope(getattr(world, role)), app_id="concierge_app")
    with pytest.raises(NotFound):  # another tenant's app does not exist for this admin
        job_offboard_app(scope=world.scope(world.outsider), app_id="sports_portal")


def test_legal_hold_refuses_the_request(world, load):
    load(world.concierge, 5)
    hold = LegalHold.objects.create(tenant=world.acme, app=world.concierge, reason="litigation", created_by="x")
    with pytest.raises(Conflict, match="legal hold"):
        job_offboard_app(scope=world.scope(), app_id="concierge_app")
    hold.delete()
    LegalHold.objects.create(tenant=world.acme, reason="audit", created_by="legal")  # the whole tenant
    with pytest.raises(Conflict, match="legal hold"):
        job_offboard_app(scope=world.scope(), app_id="concierge_app")
    assert not Job.objects.exists()


def test_hold_placed_during_grace_stops_the_job(world, load, raw_valkey):
    load(world.concierge, 20)
    job, _ = job_offboard_app(scope=world.scope(), app_id="concierge_app")
    LegalHold.objects.create(tenant=world.acme, user_id="user-3", reason="subpoena", created_by="x")
    assert run_job(job.pk) == Job.State.FAILED
    job.refresh_from_db()
    assert "legal hold" in job.error and job.receipt is None
    assert keys_of(raw_valkey, world.concierge) == 20


def test_resume_after_a_crash_counts_exactly(world, load, raw_valkey):
    """A crash right after a batch was journaled and unlinked, before its count was saved."""
    load(world.concierge, 1200)
    scope = world.scope()
    persisted = {}
    calls = {"n": 0}

    class Crash(BaseException):
        pass

    def progress(cursor):
        calls["n"] += "pending" in cursor
        persisted.clear()
        persisted.update(json.loads(json.dumps(cursor)))
        if calls["n"] == 3 and "pending" in cursor:
            raise Crash()

    def crash_after_unlink(cursor):
        # Save the journal, let the UNLINK happen, then die before the count is saved.
        progress(cursor)

    with pytest.raises(Crash):
        bulk.app_drop(scope=scope, app_id="concierge_app", cursor={}, progress=crash_after_unlink, batch_size=100)
    # the crash hit while journaling batch 3: the journal is saved but its UNLINK never ran
    assert "pending" in persisted
    resumed = json.loads(json.dumps(persisted))
    done = bulk.app_drop(scope=scope, app_id="concierge_app", cursor=resumed, progress=lambda c: None, batch_size=100)
    assert done["counts"]["memories"] == 1200
    assert done["counts"]["remaining"] == 0
    assert keys_of(raw_valkey, world.concierge) == 0


def test_resume_when_the_journaled_batch_was_already_unlinked(world, load, raw_valkey):
    load(world.concierge, 500)
    scope = world.scope()
    journal = {}

    def progress(cursor):
        if "pending" in cursor and not journal:
            journal.update(json.loads(json.dumps(cursor)))

    bulk.app_drop(scope=scope, app_id="concierge_app", cursor={}, progress=progress, batch_size=100)
    # Replay from the first journal: its batch is gone already (the killed attempt unlinked it) and
    # the rest too; the resumed count is exactly the journaled batch plus nothing else.
    journaled = len(journal["pending"]["ids"])
    again = bulk.app_drop(scope=scope, app_id="concierge_app", cursor=journal, progress=lambda c: None, batch_size=100)
    assert again["counts"]["memories"] == journaled
    assert again["counts"]["remaining"] == 0


@pytest.mark.django_db(transaction=True)
def test_offboard_command(world, load, raw_valkey, tmp_path):
    from django.core.management import call_command

    load(world.concierge, 700)
    out = io.StringIO()
    export = tmp_path / "concierge.ndjson.gz"
    receipt = tmp_path / "receipt.json"
    call_command(
        "offboard",
        "acme",
        "concierge_app",
        "--export",
        str(export),
        "--yes",
        "--receipt",
        str(receipt),
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "Offboarded acme/concierge_app: 700 memories" in out.getvalue()
    assert len(gzip.decompress(export.read_bytes()).splitlines()) == 700
    assert json.loads(receipt.read_text())["remaining"] == 0
    assert keys_of(raw_valkey, world.concierge) == 0
    with pytest.raises(CommandError, match="already offboarded"):
        call_command("offboard", "acme", "concierge_app", "--yes")
