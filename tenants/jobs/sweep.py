"""The periodic sweep (Celery beat, and once at worker start): due jobs, lost jobs, expired exports, retention,
webhook deliveries whose message was lost (or that waited behind a failing receiver), the webhook log's and the
API request log's age.

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

from memadmin.memory.collections import app_consistency_step, app_last_checked, purge_due, purge_window
from memadmin.memory.errors import StoreUnavailable
from tenants.import_files import imports_dir
from tenants.jobs.export_files import exports_dir, job_export_filename
from tenants.jobs.models import Job
from tenants.jobs.services import job_enqueue, job_retention
from tenants.jobs.workers import worker_gone
from tenants.models import App, RetentionPolicy
from tenants.request_log.recording import request_log_prune
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


def files_sweep() -> dict:
    """Uploads and export files no job will use any more, older than the erasure purge window: an import whose
    job ended (in any state) or never got a row, an export whose job forgot it (a crash mid-write). Each
    holds memory texts that an erasure would otherwise never reach."""
    cutoff = time.time() - purge_window()
    imports = Job.objects.filter(kind=Job.Kind.IMPORT_APP, state__in=Job.ACTIVE_STATES)
    active = {Path(params.get("file") or "").name for params in imports.values_list("params", flat=True)}
    kept = {Path(f).name for f in Job.objects.exclude(result_file="").values_list("result_file", flat=True)}
    writing = Job.objects.filter(kind__in=(Job.Kind.EXPORT_APP, Job.Kind.EXPORT_TENANT), state__in=Job.ACTIVE_STATES)
    for job in writing.select_related("tenant"):  # an export waiting out a store outage writes nothing for a while
        fmt, compress = job.params.get("format", "ndjson"), bool(job.params.get("gzip"))
        kept.add(job_export_filename(job, fmt, compress) + ".partial")
    removed = {"uploads": 0, "exports": 0}
    for kind, directory, keep in (("uploads", imports_dir(), active), ("exports", exports_dir(), kept)):
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if path.name in keep or not path.is_file():
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed[kind] += 1
            except FileNotFoundError:
                pass  # its job removed it meanwhile
    return removed


def erasure_purge_sweep(*, force: bool = False, wait: bool = True) -> dict:
    """Every few seconds (beat, purge.interval()): stray uploads and exports, then the disk purge of erased
    texts (memadmin/memory/purge.py) once it is due."""
    report = {"files": files_sweep()}
    try:
        report["purge"] = purge_due(force=force, wait=wait)
    except StoreUnavailable as exc:
        logger.warning("Erasure purge skipped: %s", exc.message)
        report["purge"] = {"ran": False, "error": exc.message}
    return report


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
        "request_log_pruned": request_log_prune(),
    }


def index_consistency_sweep(*, budget_seconds: float | None = None) -> dict:
    """One throttled, resumable step of the consistency monitor per live app (collections.app_consistency_step);
    a step stops after its time budget and the next beat resumes the app's SCAN where it stopped."""
    budget = budget_seconds if budget_seconds is not None else max(5.0, settings.MEMADMIN_MONITOR_SECONDS / 2)
    deadline = time.monotonic() + budget
    report = {}
    try:
        # Active apps only: an offboarding is deleting a frozen app's keys, and verifies that itself.
        apps = sorted(
            App.objects.filter(status=App.Status.ACTIVE).order_by("pk"), key=lambda a: app_last_checked(app=a.app_ref())
        )  # stalest first
    except StoreUnavailable as exc:
        logger.warning("Index consistency check skipped: %s", exc.message)
        return report
    for app in apps:
        left = deadline - time.monotonic()
        if left <= 0:  # the next beat goes on from here (each app resumes its own SCAN)
            break
        try:
            health = app_consistency_step(app=app.app_ref(), budget_seconds=left)
        except StoreUnavailable as exc:
            logger.warning("Index consistency check skipped: %s", exc.message)
            break
        report[app.collection_name] = "healthy" if health.healthy else "; ".join(health.reasons)
        if not health.healthy:
            logger.warning("Index of %s is unhealthy: %s", app.collection_name, report[app.collection_name])
    return report
