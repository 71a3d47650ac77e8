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
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from memadmin.memory import bulk, moves, selectors, store
from memadmin.memory.audit import audit_record
from memadmin.memory.errors import MemoryServiceError, StoreUnavailable, ValidationError
from memadmin.memory.filters import In, Range, and_, filter_from_fields, node_from_data
from memadmin.memory.imports import ImportRow, import_row, memory_import_plan, memory_import_write
from memadmin.memory.services import check_holds
from tenants.imports import MAX_LISTED_BAD, ImportFileError, import_items
from tenants.jobs.exports import ExportFailed, exports_dir, job_export_filename, write_export
from tenants.jobs.receipts import build_receipt
from tenants.jobs.selectors import job_app_pks
from tenants.jobs.services import job_scope
from tenants.jobs.workers import current_worker, worker_gone
from tenants.models import App, Job, RetentionPolicy

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


# --- the kinds ---------------------------------------------------------------------------


def _offboard(run: Run) -> dict:
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
        run.save(run.cursor, total=bulk.app_summary(scope=scope, app_id=app.app_id)["memories"])
    cursor = bulk.app_drop(scope=scope, app_id=app.app_id, cursor=run.cursor, progress=run.save,
                           batch_size=run.batch_size)  # fmt: skip
    line = {**cursor["counts"], "verified_at": cursor.get("verified_at")}
    return {"per_app": {app.app_id: line}, "verified_at": cursor.get("verified_at")}


def _matching(run: Run, filters, key: str, messages_before: int | None = None) -> dict:
    scope = job_scope(run.job)
    section = run.cursor.setdefault(key, {})

    def progress(cursor):
        run.cursor["done"] = sum(int(run.cursor.get(k, {}).get("done", 0)) for k in ("erase", "age", "idle"))
        run.save(run.cursor)

    bulk.matching_drop(scope=scope, filters=filters, cursor=section, progress=progress,
                       batch_size=run.batch_size, messages_before=messages_before)  # fmt: skip
    return section.get("apps", {})


def _erase_user(run: Run) -> dict:
    job = run.job
    scope = job_scope(job)
    if job.params.get("filters"):
        filters = node_from_data(job.params["filters"])
    else:
        filters = filter_from_fields(user_id=job.params["user_id"])
    check_holds(scope=scope, filters=filters)
    if not job.total:
        run.save(run.cursor, total=selectors.memory_count(scope=scope, filters=filters))
    lines = _matching(run, filters, "erase")
    return {"per_app": lines, "verified_at": max((v.get("verified_at") or "" for v in lines.values()), default=None)}


def _retention(run: Run) -> dict:
    job = run.job
    app = job.app
    scope = job_scope(job)
    now = int(time.time())
    per_app: dict[str, dict] = {}
    parts = []
    if job.params.get("max_age_days"):
        cutoff = run.cursor.setdefault("age_cutoff", now - int(job.params["max_age_days"]) * 86400)
        parts.append(("age", _and_app(app.app_id, Range("created_at", lt=cutoff)), cutoff))
    if job.params.get("idle_run_days"):
        if "idle_runs" not in run.cursor:
            before = now - int(job.params["idle_run_days"]) * 86400
            run.cursor["idle_runs"] = bulk.idle_runs(scope=scope, app_id=app.app_id, before=before)
            run.save(run.cursor)
        if run.cursor["idle_runs"]:
            parts.append(("idle", _and_app(app.app_id, In("run_id", tuple(run.cursor["idle_runs"]))), None))
    for _key, filters, _cutoff in parts:
        check_holds(scope=scope, filters=filters)
    for key, filters, cutoff in parts:
        for app_id, line in _matching(run, filters, key, messages_before=cutoff).items():
            total = per_app.setdefault(app_id, {})
            for name, value in line.items():
                if isinstance(value, int) and name != "phase":
                    total[name] = total.get(name, 0) + value
                elif name == "verified_at":
                    total[name] = max(total.get(name) or "", value or "")
    RetentionPolicy.objects.filter(app=app).update(last_swept_at=timezone.now())
    extra = {"idle_runs": len(run.cursor.get("idle_runs", [])), "age_cutoff": run.cursor.get("age_cutoff")}
    verified = max((v.get("verified_at") or "" for v in per_app.values()), default=None) or timezone.now().isoformat()
    return {"per_app": per_app or {app.app_id: {"memories": 0, "history_rows": 0, "messages": 0, "remaining": 0}},
            "verified_at": verified, "extra": {"retention": extra}}  # fmt: skip


def _and_app(app_id: str, node):
    return and_(filter_from_fields(app_id=app_id), node)


def _export(run: Run) -> dict:
    job = run.job
    scope = job_scope(job)
    fmt, compress = job.params.get("format", "ndjson"), bool(job.params.get("gzip"))
    filters = filter_from_fields(app_id=job.params.get("app_id"))
    run.save(run.cursor, total=selectors.memory_count(scope=scope, filters=filters))
    path = exports_dir() / job_export_filename(job, fmt, compress)
    items = selectors.memory_export(scope=scope, filters=filters)
    try:
        written = write_export(
            items=items, path=path, fmt=fmt, compress=compress,
            progress=lambda n: run.save({**run.cursor, "done": n}), should_stop=run.cancelled,
        )  # fmt: skip
    except ExportFailed as exc:
        raise JobFailed(str(exc)) from exc
    finally:
        items.close()
    run.cursor["done"] = written["count"]
    expires = timezone.now() + timedelta(hours=settings.MEMADMIN_EXPORT_TTL_HOURS)
    run.save(run.cursor, result_file=str(path), result_expires_at=expires)
    return {"per_app": {}, "verified_at": None,
            "extra": {"export": {"format": fmt, "gzip": compress, "file": path.name, "expires_at": expires.isoformat(),
                                 **written}}}  # fmt: skip


IMPORT_BATCH = 200  # memories embedded and written per step (one embedder call, one pipeline)


def _import_rows(path: Path):
    """(format, [(position, ImportRow | None, why)]) lazily: the file is read again on every pass and resume."""
    try:
        fmt, items = import_items(path)
    except ImportFileError as exc:
        raise JobFailed(f"Nothing was imported: {exc}") from exc

    def rows():
        try:
            for item in items:
                if item.error:
                    yield item.position, None, item.error
                    continue
                try:
                    yield item.position, import_row(item.data), ""
                except ValidationError as exc:
                    yield item.position, None, exc.message
        except ImportFileError as exc:
            raise JobFailed(f"Nothing more was imported: {exc}") from exc

    return fmt, rows()


def import_summary(job: Job, cursor: dict) -> dict:
    """The receipt's "import" section: what the file held and what became of each row."""
    unit = "line" if cursor.get("format") == "ndjson" else "item"
    return {
        "file": job.params.get("filename"), "bytes": job.params.get("bytes"), "sha256": job.params.get("sha256"),
        "format": cursor.get("format"), "valid_rows": cursor.get("valid", 0),
        "imported": cursor.get("imported", 0), "history_rows": cursor.get("history_rows", 0),
        "duplicates": {"same_id": cursor.get("duplicate_ids", 0), "same_hash": cursor.get("duplicate_hashes", 0)},
        "malformed": cursor.get("bad_total", 0), "malformed_unit": unit,
        "malformed_rows": cursor.get("bad", []), "malformed_listed": len(cursor.get("bad", [])),
        "skip_invalid": bool(job.params.get("skip_invalid")),
    }  # fmt: skip


def _import_step(run: Run, scope, app_id: str, batch: list[tuple[int, ImportRow]]) -> None:
    """Plan, journal, write: a crash after the journal re-writes exactly those rows and counts them once."""
    cursor = run.cursor
    rows = [row for _, row in batch]
    pending = cursor.get("pending")
    if pending:
        ids = set(pending["ids"])
        new = [row for row in rows if row.id in ids]
    else:
        plan = memory_import_plan(scope=scope, app_id=app_id, rows=rows)
        new = plan.new
        cursor["duplicate_ids"] += len(plan.duplicate_ids)
        cursor["duplicate_hashes"] += len(plan.duplicate_hashes)
        cursor["done"] += len(plan.duplicate_ids) + len(plan.duplicate_hashes)
        cursor["pending"] = {"until": batch[-1][0], "ids": [row.id for row in new]}
        run.save(cursor)
    written = memory_import_write(scope=scope, app_id=app_id, rows=new)
    cursor["imported"] += written["memories"]
    # A resumed batch may have written its history before the crash (INSERT OR IGNORE then writes 0 rows).
    cursor["history_rows"] += sum(len(row.history) for row in new) if pending else written["history_rows"]
    cursor["done"] += len(new)
    cursor.update(position=batch[-1][0], pending=None)
    run.save(cursor)


def _import(run: Run) -> dict:
    """Importing a file into one app (requested by services.job_import):

    1. read the whole file and check every row (ids, text, metadata, timestamps, history) before writing any:
       with malformed rows and no ``skip_invalid`` the job fails with each bad row named, nothing imported;
    2. import the valid rows in batches (plan duplicates, journal, embed + write), resumable from the cursor;
    3. remove the kept file; the receipt says what became of each row.
    """
    job = run.job
    scope = job_scope(job)
    app_id = job.params["app_id"]
    path = Path(job.params["file"])
    if not path.exists():
        raise JobFailed("The uploaded file is no longer on the server; upload it again.")
    cursor = run.cursor
    if "valid" not in cursor:
        fmt, rows = _import_rows(path)
        valid, bad, bad_total = 0, [], 0
        for position, row, why in rows:
            if row is not None:
                valid += 1
                continue
            bad_total += 1
            if len(bad) < MAX_LISTED_BAD:
                bad.append({"at": position, "reason": why})
        cursor.update(format=fmt, valid=valid, bad=bad, bad_total=bad_total, position=0, pending=None, done=0,
                      imported=0, duplicate_ids=0, duplicate_hashes=0, history_rows=0)  # fmt: skip
        run.save(cursor, total=valid)
        if bad_total and not job.params.get("skip_invalid"):
            unit = "line" if fmt == "ndjson" else "item"
            first = "; ".join(f"{unit} {b['at']}: {b['reason']}" for b in bad[:3])
            run.save(receipt=build_receipt(job, per_app={}, verified_at=None, status="refused",
                                           extra={"import": import_summary(job, cursor)}))  # fmt: skip
            path.unlink(missing_ok=True)
            raise JobFailed(
                f"{bad_total} of {valid + bad_total} rows are malformed, so nothing was imported ({first}"
                f"{'; ...' if bad_total > 3 else ''}). The receipt lists every one. Fix the file, or import "
                "again choosing to skip the malformed rows."
            )
    size = int(job.params.get("batch_size") or IMPORT_BATCH)
    _, rows = _import_rows(path)
    batch: list[tuple[int, ImportRow]] = []
    for position, row, _why in rows:
        if row is None or position <= cursor["position"]:
            continue
        batch.append((position, row))
        pending = cursor.get("pending")
        if (pending and position >= pending["until"]) or (not pending and len(batch) >= size):
            _import_step(run, scope, app_id, batch)
            batch = []
    if batch:
        _import_step(run, scope, app_id, batch)
    path.unlink(missing_ok=True)
    return {"per_app": {}, "verified_at": None, "extra": {"import": import_summary(job, cursor)}}


def _moving_apps(job: Job) -> list[str]:
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


def _move(run: Run) -> dict:
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
        run.save(run.cursor, total=moves.key_count(job.app.collection_name, job.params["from"]))
    if run.cursor.get("phase") not in ("copied", "switched", "drop", "done"):
        moves.app_copy(scope=job_scope(job), app_id=app_id, target=target, cursor=run.cursor, progress=run.save,
                       batch_size=run.batch_size)  # fmt: skip
    if run.cursor["phase"] == "copied":
        # The switch: from here every new scope reads the app from the target. Still frozen (MOVING).
        App.objects.filter(pk=job.app_id).update(store=target)
        run.cursor["phase"] = "switched"
        run.save(run.cursor)
    job.app.refresh_from_db()
    cursor = moves.app_source_drop(scope=job_scope(job), app_id=app_id, cursor=run.cursor, progress=run.save,
                                   batch_size=run.batch_size)  # fmt: skip
    verified = cursor["verified"]
    line = {"memories": verified["target_keys"] + cursor["late_copied"], "remaining": cursor["remaining"],
            "verified_at": cursor["verified_at"], "history_rows": 0, "messages": 0}  # fmt: skip
    extra = {"move": {"from": cursor["source"], "to": cursor["target"], "passes": cursor["pass"],
                      "late_copied": cursor["late_copied"], "source_deleted": cursor["dropped"],
                      **verified}}  # fmt: skip
    return {"per_app": {app_id: line}, "verified_at": cursor["verified_at"], "extra": extra}


RUNNERS = {
    Job.Kind.OFFBOARD_APP: _offboard,
    Job.Kind.ERASE_USER: _erase_user,
    Job.Kind.RETENTION: _retention,
    Job.Kind.EXPORT_APP: _export,
    Job.Kind.EXPORT_TENANT: _export,
    Job.Kind.IMPORT_APP: _import,
    Job.Kind.MOVE_APP: _move,
}
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
            store.reset()
            run.reload()
            run.save()  # heartbeat while waiting, so no other worker takes the job over


def _finish(run: Run, outcome: dict, started: float) -> None:
    job = run.job
    now = timezone.now()
    job.finished_at = now
    receipt = build_receipt(job, per_app=outcome["per_app"], verified_at=outcome.get("verified_at"),
                            extra=outcome.get("extra"))  # fmt: skip
    receipt["worker_seconds"] = round(time.monotonic() - started, 3)
    if receipt["remaining"]:
        raise JobFailed(
            f"{receipt['remaining']} memories were still in the store after the deletion; the job did not "
            "succeed. Run it again (it resumes) or check for an agent still writing to this app."
        )
    with transaction.atomic():
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
            },  # fmt: skip
        )


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
        receipt = build_receipt(job, per_app={}, verified_at=None, status="cancelled",
                                extra={"import": import_summary(job, cursor)})  # fmt: skip
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
        moving = _moving_apps(job) if job.kind != Job.Kind.MOVE_APP else []
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
        _fail(job.pk, token, f"Unexpected error ({type(exc).__name__}: {exc}). The job stopped; what it deleted "
                             "is recorded in its progress and it resumes if run again.")  # fmt: skip
    if job.kind in (Job.Kind.EXPORT_APP, Job.Kind.EXPORT_TENANT) and job.result_file:
        Path(job.result_file).unlink(missing_ok=True)
    return Job.State.FAILED
