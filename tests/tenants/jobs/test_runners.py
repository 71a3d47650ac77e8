"""tenants/jobs/runners.py: the lease a worker claims before it runs a job (the kinds run in test_offboard,
test_erasure, test_services, and in a real worker in test_tasks)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.jobs import workers
from tenants.jobs.models import Job
from tenants.jobs.runners import claim
from tests.concurrency import race


def _job(world, **fields) -> Job:
    return Job.objects.create(
        kind=Job.Kind.EXPORT_APP,
        tenant=world.acme,
        app=world.concierge,
        requested_by="test",
        params={"format": "ndjson", "app_id": world.concierge.app_id},
        **fields,
    )


def _claims(job, token):
    return lambda: claim(job.pk, token) is not None


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_job_at_once_claim_it_once(world):
    """Celery may deliver a nudge twice (a sweep re-sends it, acks_late redelivers). The second claim waits for
    the first one's row lock and then sees a fresh lease; without the lock, on PostgreSQL it read the job as
    still scheduled and both workers ran it."""
    job = _job(world)
    outcome = race(_claims(job, "first"), _claims(job, "second"))
    assert (outcome.first, outcome.second) == (True, False) and not outcome.second_finished_while_first_open
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING and job.progress["owner"] == "first" and job.progress["attempts"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_stale_lease_is_taken_over_by_one_worker_only(world):
    stale = (timezone.now() - timedelta(hours=1)).isoformat()
    job = _job(world, state=Job.State.RUNNING, progress={"owner": "dead", "heartbeat": stale, "attempts": 1})
    outcome = race(_claims(job, "first"), _claims(job, "second"))
    assert (outcome.first, outcome.second) == (True, False)
    job.refresh_from_db()
    assert job.progress["owner"] == "first" and job.progress["attempts"] == 2


def test_a_job_not_due_or_finished_is_not_claimed(world):
    assert claim(_job(world, run_after=timezone.now() + timedelta(hours=1)).pk, "t") is None
    assert claim(_job(world, state=Job.State.SUCCEEDED).pk, "t") is None
    assert claim(_job(world).pk, "t") is not None


def _dead_pid() -> int:
    import subprocess

    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _running(world, worker: str) -> Job:
    fresh = timezone.now().isoformat()  # well inside the lease (MEMADMIN_JOB_LEASE_SECONDS)
    return _job(world, state=Job.State.RUNNING, progress={"owner": "old", "heartbeat": fresh, "worker": worker})


def test_a_fresh_lease_is_taken_over_at_once_when_its_worker_process_is_gone(world, caplog):
    import socket

    job = _running(world, f"{socket.gethostname()}:{_dead_pid()}")
    taken = claim(job.pk, "new", workers.worker_id())
    assert taken is not None and taken.progress["owner"] == "new" and taken.progress["worker"] == workers.worker_id()
    assert "which is gone" in caplog.text


def test_a_worker_on_another_machine_is_gone_when_its_heartbeat_key_is(world, raw_valkey):
    job = _running(world, "another-host:4242")
    raw_valkey.set(workers.heartbeat_key("another-host:4242"), "1", ex=workers.TTL_SECONDS)
    assert claim(job.pk, "new", workers.worker_id()) is None  # it beats: its lease holds
    raw_valkey.delete(workers.heartbeat_key("another-host:4242"))  # what its TTL does once it stops beating
    assert claim(job.pk, "new", workers.worker_id()) is not None


def test_a_live_worker_keeps_its_lease(world, raw_valkey):
    me = workers.worker_id()  # alive: this process; its key is what workers.heartbeat_start() keeps up
    raw_valkey.set(workers.heartbeat_key(me), "1", ex=workers.TTL_SECONDS)
    job = _running(world, me)
    assert claim(job.pk, "another", "elsewhere:1") is None
    # Its key gone (a stall past the TTL): on this machine the live process still keeps its job.
    raw_valkey.delete(workers.heartbeat_key(me))
    assert claim(job.pk, "another", "elsewhere:1") is None
