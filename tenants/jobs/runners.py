"""Run a job from its persisted cursor: claim a lease, do the work batch by batch, finish with a receipt.

A worker can be killed at any instant. What makes that safe:
- the claim is a lease (owner token + heartbeat in Job.progress); a second delivery of the same
  message while the first worker beats is a no-op, a stale lease is taken over, and so is a lease whose
  worker process is gone (tenants/jobs/workers.py: its heartbeat key), without waiting for it to expire;
- every batch persists the cursor with the owner token in the WHERE clause, so a worker that lost
  its lease (or whose job was cancelled) stops at its next batch instead of writing over another's;
- memadmin.memory.bulk journals each batch before deleting it, so resumed counts are exact.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from memadmin.memory.collections import store_reconnect
from memadmin.memory.errors import MemoryServiceError, StoreUnavailable
from memadmin.memory.filters import filter_from_fields, node_from_data
from memadmin.memory.services import audit_record
from tenants.jobs.kinds.erase_user import run_erase_user
from tenants.jobs.kinds.export import run_export
from tenants.jobs.kinds.imports import import_summary, run_import
from tenants.jobs.kinds.move import moving_apps, run_move
from tenants.jobs.kinds.offboard import run_offboard
from tenants.jobs.kinds.retention import run_retention
from tenants.jobs.models import Job
from tenants.jobs.receipts import build_receipt, erasure_receipt_write
from tenants.jobs.run import JobFailed, LeaseLost, Postponed, Run, claim
from tenants.jobs.services import job_scope, person_erased_check
from tenants.jobs.workers import current_worker
from tenants.models import App

logger = logging.getLogger("memadmin.jobs")


RUNNERS = {
    Job.Kind.OFFBOARD_APP: run_offboard,
    Job.Kind.ERASE_USER: run_erase_user,
    Job.Kind.RETENTION: run_retention,
    Job.Kind.EXPORT_APP: run_export,
    Job.Kind.EXPORT_TENANT: run_export,
    Job.Kind.IMPORT_APP: run_import,
    Job.Kind.MOVE_APP: run_move,
}
PEOPLE_DELETED = (Job.Kind.OFFBOARD_APP, Job.Kind.ERASE_USER, Job.Kind.RETENTION)
AUDIT_ACTIONS = {
    Job.Kind.OFFBOARD_APP: "app.offboard",
    Job.Kind.ERASE_USER: "user.erase",
    Job.Kind.RETENTION: "retention.apply",
    Job.Kind.EXPORT_APP: "export.completed",
    Job.Kind.EXPORT_TENANT: "export.completed",
    Job.Kind.IMPORT_APP: "import.completed",
    Job.Kind.MOVE_APP: "app.moved",
}


# --- the engine ---------------------------------------------------------------------------


def _with_store_retries(run: Run, body):
    """The store going away (restart, failover) is waited out with backoff; the work resumes from the
    persisted cursor, so nothing is counted that was not journaled."""
    delay, failing_since, done_then = 1.0, None, None
    while True:
        try:
            return body(run)
        except StoreUnavailable as exc:
            now = time.monotonic()
            if failing_since is None or run.done != done_then:
                failing_since, delay, done_then = now, 1.0, run.done
            waited = now - failing_since
            if waited >= settings.MEMADMIN_JOB_STORE_RETRY_SECONDS:
                raise JobFailed(
                    f"The memory store stayed unreachable for {int(waited)} s ({exc.message}). "
                    f"{run.done} memories were deleted or exported before it went away, all recorded in this job. "
                    "Run the job again when the store is back: it resumes where it stopped."
                ) from exc
            logger.warning("Job %s: store unreachable (%s); retrying in %.0f s", run.job.pk, exc.message, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
            store_reconnect()
            run.reload()
            run.save()  # heartbeat while waiting, so no other worker takes the job over


def _finish(run: Run, outcome: dict, started: float) -> None:
    job = run.job
    now = timezone.now()
    job.finished_at = now
    receipt = build_receipt(
        job, per_app=outcome["per_app"], verified_at=outcome.get("verified_at"), extra=outcome.get("extra")
    )
    receipt["worker_seconds"] = round(time.monotonic() - started, 3)
    if receipt["remaining"]:
        raise JobFailed(
            f"{receipt['remaining']} memories were still in the store after the deletion; the job did not "
            "succeed. Run it again (it resumes) or check for an agent still writing to this app."
        )
    with transaction.atomic():
        erasure = erasure_receipt_write(job, receipt)
        if erasure is not None:
            receipt["erasure_receipt_id"] = str(erasure.pk)
        run.save(state=Job.State.SUCCEEDED, finished_at=now, receipt=receipt, error="")
        if job.kind == Job.Kind.OFFBOARD_APP:
            App.objects.filter(pk=job.app_id).update(status=App.Status.OFFBOARDED)
        if job.kind == Job.Kind.MOVE_APP:
            App.objects.filter(pk=job.app_id, status=App.Status.MOVING).update(status=App.Status.ACTIVE)
        audit_record(
            scope=job_scope(job),
            action=AUDIT_ACTIONS[job.kind],
            app_id=job.params.get("app_id") or "",
            user_id=job.params.get("user_id"),
            count=(
                receipt["totals"]["memories"]
                or receipt.get("export", {}).get("count", 0)
                or receipt.get("import", {}).get("imported", 0)
            ),
            details={
                "job": str(job.pk),
                "receipt": receipt["totals"],
                "verified_at": receipt["verified_at"],
                "requested_by": job.requested_by,
            },
            subjects=_people(run) if job.kind in PEOPLE_DELETED else None,
        )
        if job.kind == Job.Kind.ERASE_USER:
            filters = node_from_data(job.params["filters"]) if job.params.get("filters") else None
            person_erased_check(
                scope=job_scope(job), filters=filters or filter_from_fields(user_id=job.params["user_id"])
            )


def _people(run: Run) -> dict | list:
    """The people whose memories the job deleted: counted before an offboarding, else as the deletion
    engine met them (its lines' user_ids)."""
    if "people" in run.cursor:
        return run.cursor["people"]
    user_ids: set[str] = set()
    for key in ("erase", "age", "idle"):
        for line in run.cursor.get(key, {}).get("apps", {}).values():
            user_ids.update(line.get("user_ids") or ())
    return sorted(user_ids)


def _postpone(run: Run, exc: Postponed) -> None:
    """Back to scheduled, lease released, due again in ``exc.seconds``: the sweep (or the next nudge) runs it."""
    progress = {k: v for k, v in run.job.progress.items() if k not in ("owner", "heartbeat")}
    progress["postponed"] = exc.reason
    Job.objects.filter(pk=run.job.pk, state=Job.State.RUNNING, progress__owner=run.token).update(
        state=Job.State.SCHEDULED, run_after=timezone.now() + timedelta(seconds=exc.seconds), progress=progress
    )
    logger.info("Job %s postponed: %s", run.job.pk, exc.reason)


def _fail(job_id, token: str, message: str) -> None:
    updated = Job.objects.filter(pk=job_id, state=Job.State.RUNNING, progress__owner=token).update(
        state=Job.State.FAILED, error=message[:5000], finished_at=timezone.now()
    )
    if updated:
        logger.error("Job %s failed: %s", job_id, message)


def _cancelled(run: Run, started: float) -> None:
    """A cancelled erasure or retention still leaves a receipt of what it did delete."""
    job = run.job
    job.refresh_from_db()
    if job.state != Job.State.CANCELLED or job.receipt:
        return
    if job.kind in (Job.Kind.EXPORT_APP, Job.Kind.EXPORT_TENANT):
        return
    if job.kind == Job.Kind.IMPORT_APP:
        cursor = job.progress.get("cursor", {})
        receipt = build_receipt(
            job, per_app={}, verified_at=None, status="cancelled", extra={"import": import_summary(job, cursor)}
        )
        Job.objects.filter(pk=job.pk).update(receipt=receipt)
        Path(job.params.get("file", "")).unlink(missing_ok=True)
        return
    sections = [job.progress.get("cursor", {}).get(k, {}).get("apps", {}) for k in ("erase", "age", "idle")]
    per_app: dict[str, dict] = {}
    for section in sections:
        for app_id, line in section.items():
            total = per_app.setdefault(app_id, {})
            for name in ("memories", "history_rows", "messages"):
                total[name] = total.get(name, 0) + int(line.get(name) or 0)
    receipt = build_receipt(job, per_app=per_app, verified_at=None, status="cancelled")
    with transaction.atomic():
        erasure = erasure_receipt_write(job, receipt, status="cancelled")
        if erasure is not None:
            receipt["erasure_receipt_id"] = str(erasure.pk)
        Job.objects.filter(pk=job.pk).update(receipt=receipt, done=job.done)


def run_job(job_id, *, token: str | None = None) -> str:
    """Run (or resume) one job to its end; returns the final state, or 'skipped'."""
    token = token or uuid.uuid4().hex
    job = claim(job_id, token, current_worker())
    if job is None:
        return "skipped"
    run = Run(job, token)
    started = time.monotonic()
    try:
        moving = moving_apps(job) if job.kind != Job.Kind.MOVE_APP else []
        if moving:
            raise Postponed(f"waiting for the move of {', '.join(moving)} to another memory store")
        outcome = _with_store_retries(run, RUNNERS[job.kind])
        _finish(run, outcome, started)
        return Job.State.SUCCEEDED
    except LeaseLost:
        _cancelled(run, started)
        return "lost"
    except Postponed as exc:
        _postpone(run, exc)
        return "postponed"
    except JobFailed as exc:
        _fail(job.pk, token, str(exc))
    except MemoryServiceError as exc:  # legal hold, app gone, bad filters: final and explained
        _fail(job.pk, token, f"Refused: {exc.message}")
    except Exception as exc:
        logger.exception("Job %s crashed", job.pk)
        # The exception's type only: its message may quote a memory (the worker's log has the traceback).
        _fail(
            job.pk,
            token,
            f"Unexpected error ({type(exc).__name__}). The job stopped; what it deleted "
            "is recorded in its progress and it resumes if run again.",
        )
    if job.kind in (Job.Kind.EXPORT_APP, Job.Kind.EXPORT_TENANT) and job.result_file:
        Path(job.result_file).unlink(missing_ok=True)
    if job.kind == Job.Kind.IMPORT_APP and job.params.get("file"):
        # The upload holds every text it carries; a failed import is started again with a new upload.
        Path(job.params["file"]).unlink(missing_ok=True)
    return Job.State.FAILED
