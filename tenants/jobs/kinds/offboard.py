"""Offboarding an app: freeze, wait out the grace period, drop its collection, verify."""

from __future__ import annotations

from memadmin.memory import selectors
from memadmin.memory.collections import app_drop, app_summary
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.services import check_holds
from tenants.jobs.run import Run
from tenants.jobs.services import job_scope


def run_offboard(run: Run) -> dict:
    """Offboarding an app, step by step (requested and frozen by services.job_offboard_app, after its grace):

    1. refuse if a legal hold appeared since the request;
    2. count what the app holds, once (the progress bar's total);
    3. drop it with the deletion engine, resumable from the cursor (memadmin.memory.bulk.app_drop: stand-in
       index, SCAN + UNLINK of its keys, Mem0 history and messages, its index; 0 remaining verified);
    4. return the receipt's line; _finish then marks the app offboarded and signs the receipt.
    """
    job = run.job
    app = job.app
    scope = job_scope(job)
    # A hold placed during the grace period (or between two attempts) stops the deletion here.
    check_holds(scope=scope, filters=filter_from_fields(app_id=app.app_id))
    if not job.total:
        # Whose memories this drop takes, counted before it (one FT.AGGREGATE, O(people of the app)): the
        # audit row of the offboarding names them, so each person's "who looked" list says so.
        run.cursor["people"] = dict(
            selectors.memory_group_counts(scope=scope, field="user_id", filters=filter_from_fields(app_id=app.app_id))
        )
        run.save(run.cursor, total=app_summary(scope=scope, app_id=app.app_id)["memories"])
    cursor = app_drop(scope=scope, app_id=app.app_id, cursor=run.cursor, progress=run.save, batch_size=run.batch_size)
    line = {**cursor["counts"], "verified_at": cursor.get("verified_at")}
    return {"per_app": {app.app_id: line}, "verified_at": cursor.get("verified_at")}
