"""Celery tasks: thin, each calls one function. The work is in runners.py, the sweep in sweep.py.

Services enqueue these by name (services.RUN_JOB_TASK), so nothing imports this module but Celery.
"""

from __future__ import annotations

import logging
import os
import signal

from billiard.process import current_process
from celery import platforms, shared_task
from celery.signals import beat_init, worker_init, worker_process_init, worker_ready

from tenants.jobs.runners import run_job as job_run
from tenants.jobs.sweep import erasure_purge_sweep, index_consistency_sweep, jobs_sweep
from tenants.jobs.workers import heartbeat_start
from tenants.webhooks.delivery import webhook_deliver

logger = logging.getLogger("memadmin.jobs")


@shared_task(name="tenants.jobs.tasks.run_job", acks_late=True, reject_on_worker_lost=True)
def run_job(job_id: str) -> str:
    return job_run(job_id)


@shared_task(name="tenants.jobs.tasks.deliver_webhook", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_webhook(delivery_id: str) -> str:
    """One attempt at one webhook delivery, if due (tenants/webhooks/delivery.py: retries, back-off)."""
    return webhook_deliver(delivery_id=delivery_id)


@shared_task(name="tenants.jobs.tasks.sweep", ignore_result=True)
def sweep() -> dict:
    """Every MEMADMIN_JOB_SWEEP_SECONDS (beat): due jobs, lost jobs, expired exports, retention."""
    return jobs_sweep()


@shared_task(name="tenants.jobs.tasks.erasure_purge", ignore_result=True)
def erasure_purge() -> dict:
    """Every purge.interval() s (beat): erased texts leave the AOF, RDB and history files within
    MEMADMIN_ERASURE_PURGE_SECONDS; stray uploads and exports are removed."""
    return erasure_purge_sweep()


@shared_task(name="tenants.jobs.tasks.index_consistency", ignore_result=True)
def index_consistency() -> dict:
    """Every MEMADMIN_MONITOR_SECONDS (beat): advance each live app's index consistency check."""
    return index_consistency_sweep()


@worker_ready.connect
def _recover_on_start(sender=None, **kwargs):
    # A worker that comes back after a crash picks up what was left behind without waiting for beat.
    try:
        logger.info("Job sweep at worker start: %s", jobs_sweep())
    except Exception:
        logger.exception("Job sweep at worker start failed")


@beat_init.connect
def _die_with_the_worker(sender=None, **kwargs):
    """The beat that ``worker --beat`` runs is a child process: when the worker is SIGKILLed it lived on, one
    orphan (~100 MB) per kill, and the periodic tasks then ran twice. The kernel now sends it SIGTERM when the
    worker dies; a worker that died before this line ran is noticed by the pid check."""
    if current_process().name != "Beat":  # a standalone `celery beat` has no worker to die with
        return
    platforms.set_pdeathsig("SIGTERM")
    expected = os.environ.get("MEMADMIN_WORKER_PID")
    if expected and os.getppid() != int(expected):
        os.kill(os.getpid(), signal.SIGTERM)


@worker_init.connect
@worker_process_init.connect
def _start_heartbeat(sender=None, **kwargs):
    # Where jobs run: the pool processes (prefork), or the worker itself (solo, threads).
    heartbeat_start()
