"""Reading jobs: the one scoped fetch, and the progress the dashboard's job page and the API both show."""

from __future__ import annotations

from collections.abc import Collection

from django.utils import timezone

from memadmin.memory.errors import NotFound
from memadmin.memory.scope import Scope
from tenants.jobs.models import Job


def job_app_pks(job: Job) -> frozenset[int] | None:
    """The apps a job acts on, as services.job_scope picks them: its app, or the requester's apps it
    recorded; None for a tenant-wide job (a tenant export, which names no apps)."""
    if job.app_id:
        return frozenset({job.app_id})
    if "app_pks" in job.params:
        return frozenset(job.params["app_pks"])
    return None


def job_get(*, scope: Scope, job_id, within_apps: Collection[int] | None = None) -> Job:
    """One job of the scope's tenant. ``within_apps`` (an app-restricted caller's apps): only a job that acts
    on none but those. Another tenant's job, and one over other apps, are not found, like a missing one."""
    try:
        job = Job.objects.for_tenant(scope.tenant_id).select_related("tenant", "app").get(pk=job_id)
    except Job.DoesNotExist:
        raise NotFound("Job not found.") from None
    if within_apps is not None:
        acts_on = job_app_pks(job)
        if acts_on is None or not acts_on <= set(within_apps):
            raise NotFound("Job not found.")
    return job


def job_percent(job: Job) -> int:
    if job.state == Job.State.SUCCEEDED:
        return 100
    return min(100, int(job.done * 100 / job.total)) if job.total else 0


def job_eta(job: Job) -> int | None:
    """Seconds left at the rate so far, while a running job has counted its work and done some of it."""
    if job.state != Job.State.RUNNING or not job.started_at or not job.done or job.total <= job.done:
        return None
    elapsed = (timezone.now() - job.started_at).total_seconds()
    return int((job.total - job.done) * elapsed / job.done) if elapsed > 0 else None
