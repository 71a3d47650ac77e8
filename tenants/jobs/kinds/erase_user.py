"""Erasing one end user across the apps of a job, and deleting what a filter matches (retention does too)."""

from __future__ import annotations

from django.utils import timezone

from memadmin.memory import selectors
from memadmin.memory.collections import matching_drop
from memadmin.memory.filters import filter_from_fields, node_from_data, pinned_value
from memadmin.memory.services import check_holds
from tenants.jobs.export_files import exports_delete_for_erasure
from tenants.jobs.run import Run
from tenants.jobs.services import job_scope


def matching_run(run: Run, filters, key: str, messages_before: int | None = None) -> dict:
    scope = job_scope(run.job)
    section = run.cursor.setdefault(key, {})

    def progress(cursor):
        run.cursor["done"] = sum(int(run.cursor.get(k, {}).get("done", 0)) for k in ("erase", "age", "idle"))
        run.save(run.cursor)

    matching_drop(
        scope=scope,
        filters=filters,
        cursor=section,
        progress=progress,
        batch_size=run.batch_size,
        messages_before=messages_before,
    )
    return section.get("apps", {})


def run_erase_user(run: Run) -> dict:
    job = run.job
    scope = job_scope(job)
    if job.params.get("filters"):
        filters = node_from_data(job.params["filters"])
    else:
        filters = filter_from_fields(user_id=job.params["user_id"])
    check_holds(scope=scope, filters=filters)
    if not job.total:
        run.save(run.cursor, total=selectors.memory_count(scope=scope, filters=filters))
    lines = matching_run(run, filters, "erase")
    extra = None
    if pinned_value(scope.narrowed(filters), "user_id") is not None:
        apps = [app_id for app_id, line in lines.items() if line.get("memories")]
        extra = {
            "exports_deleted": exports_delete_for_erasure(tenant_id=job.tenant_id, app_ids=apps, before=timezone.now())
            if apps
            else 0
        }
    verified = max((v.get("verified_at") or "" for v in lines.values()), default=None)
    return {"per_app": lines, "verified_at": verified, "extra": extra}
