"""Fault tests with a real worker process (python manage.py worker) on the test Valkey and test DB file."""

import os
import signal
import time
from pathlib import Path

import pytest

from memadmin.memory import store
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.jobs.services import job_offboard_app
from tenants.models import App
from tests.support.jobs import keys_of
from tests.support.worker import job_state, wait_for

N = 30_000


@pytest.mark.django_db(transaction=True)
def test_sigkilled_worker_is_restarted_and_the_offboarding_completes_exactly(world, load, raw_valkey, worker):
    first = worker()
    load(world.concierge, N, runs=40)
    job, _ = job_offboard_app(scope=world.scope(), app_id="concierge_app")

    wait_for(lambda: job_state(job).done >= 1000, 90, "the worker to delete a first part")
    first.kill()
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING, "the kill must land mid-offboard"
    left = keys_of(raw_valkey, world.concierge)
    assert 0 < left < N

    worker()  # a new worker: the sweep sees the stale lease and sends the job again
    wait_for(lambda: job_state(job).state in ("succeeded", "failed"), 120, "the job to finish", interval=0.2)
    assert job.state == Job.State.SUCCEEDED, job.error
    line = job.receipt["per_app"]["concierge_app"]
    assert line["memories"] == N and line["history_rows"] == N and line["messages"] == 40
    assert line["remaining"] == 0 and job.done == N
    assert job.progress["attempts"] >= 2
    assert keys_of(raw_valkey, world.concierge) == 0
    assert App.objects.get(pk=world.concierge.pk).status == "offboarded"


@pytest.mark.django_db(transaction=True)
def test_valkey_restarted_mid_job_then_the_job_completes(world, load, raw_valkey, valkey_server, worker):
    worker()
    load(world.concierge, N)
    job, _ = job_offboard_app(scope=world.scope(), app_id="concierge_app")
    wait_for(lambda: job_state(job).done >= 1000, 90, "the worker to delete a first part")
    valkey_server.stop()  # SIGTERM: the AOF is flushed, like a planned restart or failover
    time.sleep(3)
    valkey_server.start()
    store.reset()
    wait_for(lambda: job_state(job).state in ("succeeded", "failed"), 180, "the job to finish", interval=0.2)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.receipt["per_app"]["concierge_app"]["memories"] == N  # nothing counted twice or missed
    assert job.receipt["remaining"] == 0
    assert keys_of(valkey_server.client(), world.concierge) == 0


def test_valkey_down_too_long_fails_the_job_clearly(world, load, valkey_server, settings):
    load(world.concierge, 10)
    job, _ = job_offboard_app(scope=world.scope(), app_id="concierge_app")
    settings.MEMADMIN_JOB_STORE_RETRY_SECONDS = 2
    valkey_server.stop()
    store.reset()
    try:
        assert run_job(job.pk) == Job.State.FAILED
    finally:
        valkey_server.start()
        store.reset()
    job.refresh_from_db()
    assert "memory store stayed unreachable" in job.error and "resumes where it stopped" in job.error
    assert job.receipt is None and job.done == 0


@pytest.mark.django_db(transaction=True)
def test_a_sigkilled_worker_leaves_no_orphan_and_its_job_resumes_before_the_lease_runs_out(
    world, load, raw_valkey, worker
):
    import psutil

    worker.env["MEMADMIN_JOB_LEASE_SECONDS"] = "120"  # the default: the resume must not wait for it
    worker.env["MEMADMIN_JOB_SWEEP_SECONDS"] = "60"
    first = worker()
    load(world.concierge, 10_000, runs=10)
    job, _ = job_offboard_app(scope=world.scope(), app_id="concierge_app")
    wait_for(lambda: job_state(job).done >= 500, 90, "the worker to delete a first part")
    children = psutil.Process(first.process.pid).children(recursive=True)
    assert len(children) >= 2  # the pool process and the embedded beat
    os.kill(first.process.pid, signal.SIGKILL)  # the worker only, as `kill -9 <pid>` does: not its group
    first.process.wait(10)
    killed = time.monotonic()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"orphans left: {[(p.pid, p.cmdline()) for p in alive]}"
    assert job_state(job).state == Job.State.RUNNING

    worker()  # at its start, its sweep finds the lease holder gone and sends the job again
    wait_for(lambda: job_state(job).state in ("succeeded", "failed"), 90, "the job to finish", interval=0.2)
    took = time.monotonic() - killed
    assert job.state == Job.State.SUCCEEDED, job.error
    print(f"job resumed and finished {took:.1f} s after the kill")
    assert took < 60, took  # not after the 120 s lease
    assert job.receipt["per_app"]["concierge_app"]["memories"] == 10_000 and job.progress["attempts"] == 2
    log = (Path(first.log)).read_text()
    assert "which is gone" in log
