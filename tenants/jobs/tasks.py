"""Celery tasks: thin wrappers, the work is in runners.py and the bookkeeping in services.py."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from memadmin.celery import app

logger = logging.getLogger("memadmin.jobs")


@app.task(name="tenants.jobs.tasks.run_job", acks_late=True, reject_on_worker_lost=True)
def run_job(job_id: str) -> str:
    from tenants.jobs.runners import run_job as run

    return run(job_id)


@app.task(name="tenants.jobs.tasks.sweep", ignore_result=True)
def sweep() -> dict:
    """Every MEMADMIN_JOB_SWEEP_SECONDS (beat): due jobs, lost jobs, expired exports, retention."""
    from tenants.jobs.services import jobs_sweep

    return jobs_sweep()


@app.task(name="tenants.jobs.tasks.index_consistency", ignore_result=True)
def index_consistency() -> dict:
    """Every MEMADMIN_MONITOR_SECONDS (beat): advance each live app's index consistency check."""
    from tenants.jobs.services import index_consistency_sweep

    return index_consistency_sweep()


@worker_ready.connect
def _recover_on_start(sender=None, **kwargs):
    # A worker that comes back after a crash picks up what was left behind without waiting for beat.
    from tenants.jobs.services import jobs_sweep

    try:
        logger.info("Job sweep at worker start: %s", jobs_sweep())
    except Exception:
        logger.exception("Job sweep at worker start failed")
