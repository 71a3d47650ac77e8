"""Reading jobs: the one scoped fetch, an end user's latest erasure, an export's file opened for download
(audited), and the progress the dashboard's job page and the API both show."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from django.utils import timezone

from memadmin.memory import capabilities as cap
from memadmin.memory.errors import NotFound
from memadmin.memory.scope import Scope
from memadmin.memory.services import audit_record
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


def erasure_latest(*, scope: Scope, user_id: str) -> Job | None:
    """The newest erasure job of one end user (their page shows it running, then its receipt)."""
    return (
        Job.objects.filter(kind=Job.Kind.ERASE_USER, tenant_id=scope.tenant_id, params__user_id=user_id)
        .order_by("-created_at")
        .first()
    )


def job_export_open(*, scope: Scope, job: Job):
    """The export file of ``job``, open for a download. Each download is a read of every memory in it, so it is
    audited like any other read, whoever asked for the export."""
    scope.require(cap.EXPORT_APP)
    if job.tenant_id != scope.tenant_id or job.kind not in (Job.Kind.EXPORT_APP, Job.Kind.EXPORT_TENANT):
        raise NotFound("No such export.")
    path = Path(job.result_file) if job.result_file else None
    if not path or not job.result_expires_at or job.result_expires_at <= timezone.now():
        raise NotFound("This export has expired or was never written; run a new export.")
    try:
        file = open(path, "rb")  # noqa: SIM115 (the response streams and closes it)
    except FileNotFoundError:
        raise NotFound("This export has expired or was never written; run a new export.") from None
    written = ((job.receipt or {}).get("extra") or {}).get("export") or {}
    audit_record(
        scope=scope,
        action="export.download",
        app_id=job.params.get("app_id") or "",
        count=written.get("count", job.done),
        details={"job": str(job.pk), "kind": job.kind, "file": path.name},
    )
    return file
