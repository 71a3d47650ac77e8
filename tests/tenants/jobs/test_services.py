"""Erase user, exports, retention and the sweep, run in-process."""

import csv
import gzip
import io
import json
import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from memadmin.memory.errors import Conflict, PermissionDenied
from memadmin.memory.models import AuditEvent, LegalHold
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.jobs.services import job_cancel, job_erase_user, job_export
from tenants.jobs.sweep import exports_expire, jobs_sweep
from tenants.models import RetentionPolicy
from tests.support.jobs import keys_of
from tests.support.stores import on_both_stores


def _users(raw_valkey, app):
    users = set()
    for key in raw_valkey.scan_iter(match=f"mem0:{app.collection_name}:*", count=1000):
        users.add(raw_valkey.hget(key, "user_id").decode())
    return users


@on_both_stores
def test_erase_user_across_apps(world, load, acme_valkey):
    load(world.concierge, 300, users=10, runs=10)  # user-3: 30 memories, runs run-3
    load(world.sports, 100, users=10, seed=3, start=1000)  # user-3 has 10 here
    job, created = job_erase_user(scope=world.scope(world.support), user_id="user-3")
    again, created_again = job_erase_user(scope=world.scope(world.support), user_id="user-3")
    assert created and not created_again and again.pk == job.pk
    assert run_job(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    per_app = job.receipt["per_app"]
    assert per_app["concierge_app"]["memories"] == 30 and per_app["sports_portal"]["memories"] == 10
    assert per_app["concierge_app"]["history_rows"] == 30
    assert per_app["concierge_app"]["messages"] == 1  # the user's one session with messages
    assert job.receipt["remaining"] == 0 and job.total == 40 == job.done
    assert "user-3" not in _users(acme_valkey, world.concierge) | _users(acme_valkey, world.sports)
    assert keys_of(acme_valkey, world.concierge) == 270
    assert AuditEvent.objects.get(action="user.erase").details["job"] == str(job.pk)


def test_erase_user_permissions_and_hold(world):
    with pytest.raises(PermissionDenied):
        job_erase_user(scope=world.scope(world.viewer), user_id="user-1")
    LegalHold.objects.create(tenant=world.acme, user_id="user-1", reason="subpoena", created_by="legal")
    with pytest.raises(Conflict, match="legal hold"):
        job_erase_user(scope=world.scope(world.support), user_id="user-1")


@on_both_stores
@pytest.mark.parametrize("fmt,compress", [("ndjson", False), ("json", True), ("csv", False)])
def test_export_app(world, load, fmt, compress):
    load(world.concierge, 1200)
    job = job_export(scope=world.scope(), app_id="concierge_app", fmt=fmt, compress=compress)
    assert run_job(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    path = Path(job.result_file)
    assert path.exists() and path.parent == Path(settings.DATA_DIR) / "exports"
    assert job.result_expires_at > timezone.now() + timedelta(hours=settings.MEMADMIN_EXPORT_TTL_HOURS - 1)
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if compress else raw).decode()
    if fmt == "ndjson":
        rows = [json.loads(line) for line in text.splitlines()]
    elif fmt == "json":
        rows = json.loads(text)
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1200 == job.receipt["export"]["count"] == job.receipt["totals"]["memories"]
    assert job.receipt["per_app"] == {"concierge_app": {"memories": 1200}}
    assert {r["app_id"] for r in rows} == {"concierge_app"}
    first = rows[0] if fmt != "csv" else {**rows[0], "history": json.loads(rows[0]["history"])}
    assert first["history"] and first["history"][0]["event"] == "ADD"
    assert not list(path.parent.glob("*.partial"))


def test_export_tenant_and_expiry(world, load):
    load(world.concierge, 30)
    load(world.sports, 20, start=500)
    job = job_export(scope=world.scope(), fmt="ndjson")
    assert job.kind == "export_tenant"
    run_job(job.pk)
    job.refresh_from_db()
    assert job.receipt["export"]["count"] == 50 == job.receipt["totals"]["memories"]
    assert job.receipt["per_app"] == {"concierge_app": {"memories": 30}, "sports_portal": {"memories": 20}}
    Job.objects.filter(pk=job.pk).update(result_expires_at=timezone.now() - timedelta(seconds=1))
    assert exports_expire() == 1
    job.refresh_from_db()
    assert job.result_file == "" and not list((Path(settings.DATA_DIR) / "exports").glob("*.ndjson"))


def test_support_cannot_export_an_app(world):
    with pytest.raises(PermissionDenied):
        job_export(scope=world.scope(world.support), app_id="concierge_app")


@pytest.fixture
def tiny_export_disk():
    """A real 64 KiB filesystem where exports are written (tmpfs; we run as root in CI and here)."""
    directory = Path(settings.DATA_DIR) / "exports"
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)


def test_disk_full_while_exporting(world, load, tiny_export_disk):
    load(world.concierge, 2000)
    job = job_export(scope=world.scope(), app_id="concierge_app", fmt="ndjson")
    assert run_job(job.pk) == Job.State.FAILED
    job.refresh_from_db()
    assert "is full" in job.error and "partial file was removed" in job.error
    assert os.listdir(tiny_export_disk) == []
    assert job.result_file == ""


def test_retention_max_age_and_idle_runs(world, load, raw_valkey):
    load(world.concierge, 400, runs=20)  # created_at spread over the year before 2025-01-01
    newest = time.time()
    # Two runs are fresh: their memories are touched now.
    for key in raw_valkey.scan_iter(match=f"mem0:{world.concierge.collection_name}:*", count=1000):
        if raw_valkey.hget(key, "run_id") in (b"run-1", b"run-2"):
            raw_valkey.hset(key, "updated_at", int(newest))
    policy = RetentionPolicy.objects.create(app=world.concierge, idle_run_days=30)
    assert jobs_sweep()["retention_jobs"] == 1
    job = Job.objects.get(kind="retention")
    assert run_job(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert job.receipt["per_app"]["concierge_app"]["memories"] == 360
    assert job.receipt["retention"]["idle_runs"] == 18
    assert keys_of(raw_valkey, world.concierge) == 40
    # The people whose memories the sweep deleted find it on their list; the receipt never names them.
    from memadmin.memory.models import AuditEvent
    from tenants.transparency import person_accesses

    event = AuditEvent.objects.get(action="retention.apply")
    assert len(event.details["user_ids"]) == 50 and "user-" not in str(job.receipt)
    whats = [g["what"] for g in person_accesses(tenant=world.acme, user_id="user-3")["accesses"]]
    assert "deleted old memories of yours under the retention policy" in whats
    policy.refresh_from_db()
    assert policy.last_swept_at is not None
    assert jobs_sweep()["retention_jobs"] == 0  # not due again for MEMADMIN_RETENTION_INTERVAL_HOURS


def test_retention_by_age_is_refused_under_hold(world, load, raw_valkey):
    load(world.concierge, 50)
    hold = LegalHold.objects.create(tenant=world.acme, reason="audit", created_by="legal")
    RetentionPolicy.objects.create(app=world.concierge, max_age_days=1)
    jobs_sweep()
    job = Job.objects.get(kind="retention")
    assert run_job(job.pk) == Job.State.FAILED
    job.refresh_from_db()
    assert "legal hold" in job.error and keys_of(raw_valkey, world.concierge) == 50
    hold.released_at = timezone.now()
    hold.save()
    job2 = Job.objects.create(
        kind="retention",
        tenant=world.acme,
        app=world.concierge,
        requested_by="t",
        params={"app_id": "concierge_app", "max_age_days": 1},
    )
    assert run_job(job2.pk) == Job.State.SUCCEEDED
    assert keys_of(raw_valkey, world.concierge) == 0


def test_cancel_rules(world, load):
    load(world.concierge, 5)
    job, _ = job_erase_user(scope=world.scope(world.support), user_id="user-1")
    with pytest.raises(PermissionDenied):
        job_cancel(scope=world.scope(world.viewer), job=job)
    job_cancel(scope=world.scope(world.support), job=job)
    job.refresh_from_db()
    assert job.state == "cancelled"
    with pytest.raises(Conflict):
        job_cancel(scope=world.scope(world.support), job=job)
