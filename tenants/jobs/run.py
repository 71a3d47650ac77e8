"""A job's run: the lease a worker claims before it runs a job, and the cursor it persists under that lease."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tenants.jobs.models import Job
from tenants.jobs.workers import worker_gone

logger = logging.getLogger("memadmin.jobs")


class LeaseLost(Exception):
    """Another worker owns the job now, or it was cancelled: stop without writing."""


class JobFailed(Exception):
    """A clear, final reason for the person who asked."""


class Postponed(Exception):
    """Not now: the job goes back to the queue and runs again after ``seconds``."""

    def __init__(self, reason: str, seconds: int = 30):
        super().__init__(reason)
        self.reason, self.seconds = reason, seconds


class Run:
    def __init__(self, job: Job, token: str):
        self.job = job
        self.token = token
        self.cursor: dict = dict(job.progress.get("cursor") or {})
        self.done = job.done
        self.batch_size = int(job.params.get("batch_size") or settings.MEMADMIN_JOB_BATCH_SIZE)

    def _meta(self) -> dict:
        meta = {k: v for k, v in self.job.progress.items() if k != "cursor"}
        meta.update(owner=self.token, heartbeat=timezone.now().isoformat())
        return meta

    def save(self, cursor: dict | None = None, **fields) -> None:
        """Persist the cursor in one UPDATE that only succeeds while we still hold the lease."""
        if cursor is not None:
            self.cursor = cursor
            self.done = int(cursor.get("done", self.done))
        progress = {**self._meta(), "cursor": self.cursor}
        updated = Job.objects.filter(pk=self.job.pk, state=Job.State.RUNNING, progress__owner=self.token).update(
            progress=progress, done=self.done, **fields
        )
        if not updated:
            raise LeaseLost()
        self.job.progress = progress
        for name, value in fields.items():
            setattr(self.job, name, value)

    def reload(self) -> None:
        self.job.refresh_from_db()
        if self.job.state != Job.State.RUNNING or self.job.progress.get("owner") != self.token:
            raise LeaseLost()
        self.cursor = dict(self.job.progress.get("cursor") or {})
        self.done = self.job.done

    def cancelled(self) -> bool:
        return Job.objects.filter(pk=self.job.pk, state=Job.State.CANCELLED).exists()


def claim(job_id, token: str, worker: str | None = None) -> Job | None:
    """Take the job's lease for ``worker`` (a workers.worker_id), or None when it is not ours to run (done,
    not due, beating elsewhere in a worker that is alive)."""
    now = timezone.now()
    with transaction.atomic():
        Job.objects.filter(pk=job_id).update(state=F("state"))  # lock first (see services._lock)
        job = Job.objects.select_related("tenant", "app").filter(pk=job_id).first()
        if job is None or job.state in Job.TERMINAL_STATES:
            return None
        if job.state == Job.State.SCHEDULED and job.run_after > now:
            return None
        if job.state == Job.State.RUNNING:
            beat = job.progress.get("heartbeat")
            holder = job.progress.get("worker")
            fresh = beat and now - datetime.fromisoformat(beat) < timedelta(seconds=settings.MEMADMIN_JOB_LEASE_SECONDS)
            if fresh and not (holder and holder != worker and worker_gone(holder)):
                return None
            if fresh:
                logger.warning("Taking over job %s from worker %s, which is gone (last beat %s)", job.pk, holder, beat)
            else:
                logger.warning("Taking over job %s from a worker that stopped beating at %s", job.pk, beat)
        attempts = int(job.progress.get("attempts", 0)) + 1
        job.progress = {**job.progress, "owner": token, "heartbeat": now.isoformat(), "attempts": attempts}
        if worker:
            job.progress["worker"] = worker
        job.state = Job.State.RUNNING
        job.started_at = job.started_at or now
        job.save(update_fields=["progress", "state", "started_at"])
    return job
