"""The periodic sweep (Celery beat, and once at worker start): due jobs, lost jobs, expired exports, retention,
webhook deliveries whose message was lost (or that waited behind a failing receiver), the webhook log's age.

The Job row is the source of truth; these functions only re-send nudges the broker lost and schedule what is due.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from memadmin.memory.consistency import consistency_step, last_checked
from memadmin.memory.errors import StoreUnavailable
from tenants.jobs.services import job_enqueue, job_retention
from tenants.jobs.workers import worker_gone
from tenants.models import App, Job, RetentionPolicy
from tenants.webhooks.delivery import deliveries_dispatch_due, deliveries_prune

logger = logging.getLogger("memadmin.jobs")


def jobs_dispatch_due() -> int:
    """Enqueue scheduled jobs whose time has come (grace periods ending, nudges the broker lost)."""
    now = timezone.now()
    lease = timedelta(seconds=settings.MEMADMIN_JOB_LEASE_SECONDS)
    sent = 0
    for job in Job.objects.filter(state=Job.State.SCHEDULED, run_after__lte=now):
        enqueued = job.progress.get("enqueued_at")
        if enqueued and now - datetime.fromisoformat(enqueued) < lease:
            continue  # a nudge is already on its way
        sent += job_enqueue(job_id=job.pk)
    return sent


def jobs_recover() -> int:
    """Running jobs whose worker stopped beating (SIGKILL, machine lost) are sent again, as soon as that
    worker's process or heartbeat key is gone (workers.py), else once the lease ran out; the next worker
    takes the lease over and resumes from the job's cursor."""
    now = timezone.now()
    lease = timedelta(seconds=settings.MEMADMIN_JOB_LEASE_SECONDS)
    sent = 0
    for job in Job.objects.filter(state=Job.State.RUNNING):
        beat = job.progress.get("heartbeat")
        holder = job.progress.get("worker")
        if beat and now - datetime.fromisoformat(beat) < lease and not (holder and worker_gone(holder)):
            continue
        logger.warning("Job %s lost its worker %s (last heartbeat %s); sending it again.", job.pk, holder, beat)
        sent += job_enqueue(job_id=job.pk)
    return sent


def exports_expire() -> int:
    """Delete export files past their download window."""
    removed = 0
    for job in Job.objects.filter(result_expires_at__lte=timezone.now()).exclude(result_file=""):
        Path(job.result_file).unlink(missing_ok=True)
        Job.objects.filter(pk=job.pk).update(result_file="")
        removed += 1
    return removed


def retention_due() -> int:
    cutoff = timezone.now() - timedelta(hours=settings.MEMADMIN_RETENTION_INTERVAL_HOURS)
    policies = RetentionPolicy.objects.select_related("app").filter(enabled=True, app__status=App.Status.ACTIVE)
    policies = policies.filter(Q(last_swept_at__isnull=True) | Q(last_swept_at__lte=cutoff))
    return sum(1 for policy in policies if job_retention(policy=policy))


def jobs_sweep() -> dict:
    return {
        "dispatched": jobs_dispatch_due(),
        "recovered": jobs_recover(),
        "exports_expired": exports_expire(),
        "retention_jobs": retention_due(),
        "webhook_deliveries": deliveries_dispatch_due(),
        "webhook_log_pruned": deliveries_prune(),
    }


def index_consistency_sweep(*, budget_seconds: float | None = None) -> dict:
    """One throttled, resumable step of the consistency monitor per live app (consistency.consistency_step);
    a step stops after its time budget and the next beat resumes the app's SCAN where it stopped."""
    budget = budget_seconds if budget_seconds is not None else max(5.0, settings.MEMADMIN_MONITOR_SECONDS / 2)
    deadline = time.monotonic() + budget
    report = {}
    try:
        # Active apps only: an offboarding is deleting a frozen app's keys, and verifies that itself.
        apps = sorted(App.objects.filter(status=App.Status.ACTIVE).order_by("pk"),
                      key=lambda a: last_checked(collection=a.app_ref().collection))  # stalest first  # fmt: skip
    except StoreUnavailable as exc:
        logger.warning("Index consistency check skipped: %s", exc.message)
        return report
    for app in apps:
        left = deadline - time.monotonic()
        if left <= 0:  # the next beat goes on from here (each app resumes its own SCAN)
            break
        try:
            # app_ref() routes the collection to the app's store (memadmin/memory/store.py)
            health = consistency_step(collection=app.app_ref().collection, budget_seconds=left)
        except StoreUnavailable as exc:
            logger.warning("Index consistency check skipped: %s", exc.message)
            break
        report[app.collection_name] = "healthy" if health.healthy else "; ".join(health.reasons)
        if not health.healthy:
            logger.warning("Index of %s is unhealthy: %s", app.collection_name, report[app.collection_name])
    return report
