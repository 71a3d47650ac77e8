"""Moving an app to another memory store: wait for its other jobs, copy and verify, switch, drop the source."""

from __future__ import annotations

import time

from django.conf import settings
from django.utils import timezone

from memadmin.memory.collections import app_copy, app_source_drop, collection_key_count
from tenants.jobs.models import Job
from tenants.jobs.run import Postponed, Run
from tenants.jobs.selectors import job_app_pks
from tenants.jobs.services import job_scope
from tenants.models import App


def moving_apps(job: Job) -> list[str]:
    """The apps this job acts on that are being moved between stores (a move of its own app aside)."""
    moving = App.objects.filter(tenant_id=job.tenant_id, status=App.Status.MOVING)
    acts_on = job_app_pks(job)
    if acts_on is not None:
        moving = moving.filter(pk__in=acts_on)
    return list(moving.values_list("app_id", flat=True))


def _others_running(job: Job) -> list[Job]:
    """Jobs running now on the app this move is about to copy: it waits for them (an erasure or export
    scoped before the freeze would otherwise delete or read behind the copy's back)."""
    running = Job.objects.filter(tenant_id=job.tenant_id, state=Job.State.RUNNING).exclude(pk=job.pk)
    return [other for other in running if (job_app_pks(other) is None or job.app_id in job_app_pks(other))]


def run_move(run: Run) -> dict:
    """Moving an app to another store (requested and frozen by services.job_move_app):

    1. wait for jobs already running on the app, and for requests that began before the freeze to end;
    2. copy and verify (memadmin.memory.moves.app_copy: DUMP/RESTORE in batches, counts on both stores,
       the target's index built and healthy), resumable from the cursor;
    3. switch the app to the target (it stays frozen), then delete it from the source (moves.app_source_drop);
    4. _finish unfreezes the app and signs the receipt.
    """
    job = run.job
    app_id, target = job.params["app_id"], job.params["store"]
    if not run.cursor.get("phase"):
        busy = _others_running(job)
        if busy:
            raise Postponed(f"waiting for {len(busy)} running job(s) on this app to finish")
        settle = settings.MEMADMIN_MOVE_SETTLE_SECONDS - (timezone.now() - job.created_at).total_seconds()
        if settle > 0:
            time.sleep(settle)
    if not job.total:
        total = collection_key_count(collection=job.app.collection_name, store_name=job.params["from"])
        run.save(run.cursor, total=total)
    if run.cursor.get("phase") not in ("copied", "switched", "drop", "done"):
        app_copy(
            scope=job_scope(job),
            app_id=app_id,
            target=target,
            cursor=run.cursor,
            progress=run.save,
            batch_size=run.batch_size,
        )
    if run.cursor["phase"] == "copied":
        # The switch: from here every new scope reads the app from the target. Still frozen (MOVING).
        App.objects.filter(pk=job.app_id).update(store=target)
        run.cursor["phase"] = "switched"
        run.save(run.cursor)
    job.app.refresh_from_db()
    cursor = app_source_drop(
        scope=job_scope(job), app_id=app_id, cursor=run.cursor, progress=run.save, batch_size=run.batch_size
    )
    verified = cursor["verified"]
    line = {
        "memories": verified["target_keys"] + cursor["late_copied"],
        "remaining": cursor["remaining"],
        "verified_at": cursor["verified_at"],
        "history_rows": 0,
        "messages": 0,
    }
    extra = {
        "move": {
            "from": cursor["source"],
            "to": cursor["target"],
            "passes": cursor["pass"],
            "late_copied": cursor["late_copied"],
            "source_deleted": cursor["dropped"],
            **verified,
        }
    }
    return {"per_app": {app_id: line}, "verified_at": cursor["verified_at"], "extra": extra}
