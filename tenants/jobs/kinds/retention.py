"""Retention: deleting memories older than a tenant's policy, and idle runs."""

from __future__ import annotations

import time

from django.utils import timezone

from memadmin.memory.collections import idle_runs
from memadmin.memory.filters import In, Range
from memadmin.memory.services import check_holds
from tenants.jobs.kinds.erase_user import matching_run
from tenants.jobs.kinds.export import and_app
from tenants.jobs.run import Run
from tenants.jobs.services import job_scope
from tenants.models import RetentionPolicy


def run_retention(run: Run) -> dict:
    job = run.job
    app = job.app
    scope = job_scope(job)
    now = int(time.time())
    per_app: dict[str, dict] = {}
    parts = []
    if job.params.get("max_age_days"):
        cutoff = run.cursor.setdefault("age_cutoff", now - int(job.params["max_age_days"]) * 86400)
        parts.append(("age", and_app(app.app_id, Range("created_at", lt=cutoff)), cutoff))
    if job.params.get("idle_run_days"):
        if "idle_runs" not in run.cursor:
            before = now - int(job.params["idle_run_days"]) * 86400
            run.cursor["idle_runs"] = idle_runs(scope=scope, app_id=app.app_id, before=before)
            run.save(run.cursor)
        if run.cursor["idle_runs"]:
            parts.append(("idle", and_app(app.app_id, In("run_id", tuple(run.cursor["idle_runs"]))), None))
    for _key, filters, _cutoff in parts:
        check_holds(scope=scope, filters=filters)
    for key, filters, cutoff in parts:
        for app_id, line in matching_run(run, filters, key, messages_before=cutoff).items():
            total = per_app.setdefault(app_id, {})
            for name, value in line.items():
                if isinstance(value, int) and name != "phase":
                    total[name] = total.get(name, 0) + value
                elif name == "verified_at":
                    total[name] = max(total.get(name) or "", value or "")
    RetentionPolicy.objects.filter(app=app).update(last_swept_at=timezone.now())
    extra = {"idle_runs": len(run.cursor.get("idle_runs", [])), "age_cutoff": run.cursor.get("age_cutoff")}
    verified = max((v.get("verified_at") or "" for v in per_app.values()), default=None) or timezone.now().isoformat()
    return {
        "per_app": per_app or {app.app_id: {"memories": 0, "history_rows": 0, "messages": 0, "remaining": 0}},
        "verified_at": verified,
        "extra": {"retention": extra},
    }
