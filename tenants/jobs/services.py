"""Create, dedupe, cancel and dispatch jobs. The Job row is the source of truth; Celery only delivers nudges.

Every job_* function takes the caller's Scope first (keyword-only, like every service) and
checks what the memory service would check, so a refusal (legal hold, role) happens at request
time with a clear message instead of minutes later in a worker.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from memadmin.celery import app as celery_app
from memadmin.memory import capabilities as cap
from memadmin.memory.collections import DEFAULT_STORE, store_names
from memadmin.memory.errors import Conflict, NotFound, ValidationError
from memadmin.memory.filters import EVERYTHING, Node, filter_from_fields, node_to_data, pinned_value
from memadmin.memory.ids import clean_id
from memadmin.memory.records import DeletionResult
from memadmin.memory.scope import Scope
from memadmin.memory.selectors import memory_count
from memadmin.memory.services import audit_record, check_holds, memory_delete_matching
from tenants.entities import end_user_erased
from tenants.import_files import ImportFileError, import_store
from tenants.jobs.export_files import exports_delete_for_erasure
from tenants.jobs.models import Job
from tenants.models import App, RetentionPolicy, Tenant
from tenants.scoping import scope_for_job

logger = logging.getLogger("memadmin.jobs")

ACTIVE = Job.ACTIVE_STATES
EXPORT_FORMATS = Job.EXPORT_FORMATS
# The worker's task, by name: this module never imports tasks.py (tasks -> runners -> services).
RUN_JOB_TASK = "tenants.jobs.tasks.run_job"
MAX_GRACE_HOURS = 24 * 90


def _lock(model, pk) -> None:
    """Take the row's write lock before reading anything: a row lock on PostgreSQL, and on SQLite the
    database write lock up front (a read-then-write transaction there fails instead of waiting)."""
    model.objects.filter(pk=pk).update(id=F("id"))


def _enqueue_on_commit(job: Job) -> None:
    if job.run_after <= timezone.now():
        transaction.on_commit(lambda: job_enqueue(job_id=job.pk))


def job_enqueue(*, job_id) -> bool:
    """Send the nudge. A broker that is down loses nothing: the sweep dispatches due jobs again."""
    try:
        celery_app.send_task(
            RUN_JOB_TASK, args=[str(job_id)], retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2}
        )
    except Exception as exc:  # kombu raises many kinds; the job stays scheduled either way
        logger.warning("Could not enqueue job %s (%s); the sweep will dispatch it.", job_id, exc)
        return False
    Job.objects.filter(pk=job_id, state=Job.State.SCHEDULED).update(
        progress=_with(Job.objects.get(pk=job_id).progress, enqueued_at=timezone.now().isoformat())
    )
    return True


def _with(progress: dict, **values) -> dict:
    return {**(progress or {}), **values}


# Cancelling a job needs the capability it took to request it.
CANCEL_NEEDS = {
    Job.Kind.OFFBOARD_APP: cap.OFFBOARD,
    Job.Kind.EXPORT_APP: cap.EXPORT_APP,
    Job.Kind.EXPORT_TENANT: cap.EXPORT_APP,
    Job.Kind.ERASE_USER: cap.DELETE,
    Job.Kind.RETENTION: cap.DELETE,
    Job.Kind.IMPORT_APP: cap.WRITE,
    Job.Kind.MOVE_APP: cap.MOVE_APP,
}


def _audit_job(scope: Scope, job: Job, action: str, **details) -> None:
    audit_record(
        scope=scope,
        action=action,
        app_id=job.app.app_id if job.app_id else "",
        user_id=job.params.get("user_id"),
        details={"job": str(job.pk), "kind": job.kind, **details},
    )


# --- requests ---------------------------------------------------------------------


def job_offboard_app(*, scope: Scope, app_id: str, grace_hours: int | None = None) -> tuple[Job, bool]:
    """Freeze the app and schedule its offboarding; a second request returns the first job.

    A failed offboarding is resumed, not restarted: its cursor already counts what it deleted."""
    scope.require(cap.OFFBOARD)
    ref = scope.app_named(app_id)
    grace = settings.MEMADMIN_OFFBOARD_GRACE_HOURS if grace_hours is None else grace_hours
    if not isinstance(grace, int) or not 0 <= grace <= MAX_GRACE_HOURS:
        raise ValidationError(f"grace_hours must be between 0 and {MAX_GRACE_HOURS}.", field="grace_hours")
    check_holds(scope=scope, filters=filter_from_fields(app_id=ref.app_id))
    with transaction.atomic():
        _lock(App, ref.pk)
        app = App.objects.select_related("tenant").get(pk=ref.pk)
        if app.status == App.Status.OFFBOARDED:
            raise Conflict(f"App {app.app_id} is already offboarded.", status="offboarded")
        if app.status == App.Status.MOVING:
            raise Conflict(
                f"App {app.app_id} is being moved to another memory store; offboard it once the move has finished.",
                status="moving",
            )
        existing = (
            Job.objects.filter(kind=Job.Kind.OFFBOARD_APP, app=app, state__in=(*ACTIVE, Job.State.FAILED))
            .order_by("-created_at")
            .first()
        )
        if existing is not None and existing.state in ACTIVE:
            return existing, False
        run_after = timezone.now() + timedelta(hours=grace)
        if existing is not None:
            job, created = existing, False
            job.state, job.error, job.run_after, job.finished_at = Job.State.SCHEDULED, "", run_after, None
            job.save(update_fields=["state", "error", "run_after", "finished_at"])
        else:
            job = Job.objects.create(
                kind=Job.Kind.OFFBOARD_APP,
                tenant=app.tenant,
                app=app,
                requested_by=scope.actor,
                params={"grace_hours": grace, "app_id": app.app_id, "role": scope.role},
                run_after=run_after,
            )
            created = True
        App.objects.filter(pk=app.pk).update(status=App.Status.FROZEN)
        _audit_job(scope, job, "app.offboard_requested", grace_hours=grace, run_after=run_after.isoformat())
        _enqueue_on_commit(job)
    return job, created


def offboarding_fits_a_request(*, scope: Scope, app_id: str) -> bool:
    """Whether an app is small enough to offboard within an API request (MEMADMIN_ERASURE_SYNC_LIMIT memories, as
    for any synchronous erasure); larger ones are left to the worker and followed by their job."""
    count = memory_count(scope=scope, filters=filter_from_fields(app_id=scope.app_named(app_id).app_id))
    return count <= settings.MEMADMIN_ERASURE_SYNC_LIMIT


def job_move_app(*, scope: Scope, app_id: str, store: str) -> tuple[Job, bool]:
    """Freeze the app (no writes, no deletions) and schedule its move to ``store``; a second request returns
    the first job, and a failed move is resumed from its cursor (it already copied what it copied)."""
    scope.require(cap.MOVE_APP)
    ref = scope.app_named(app_id)
    if not isinstance(store, str) or store not in store_names():
        raise ValidationError("Choose one of the configured memory stores.", field="store")
    with transaction.atomic():
        _lock(App, ref.pk)
        app = App.objects.select_related("tenant").get(pk=ref.pk)
        existing = (
            Job.objects.filter(kind=Job.Kind.MOVE_APP, app=app, state__in=(*ACTIVE, Job.State.FAILED))
            .order_by("-created_at")
            .first()
        )
        if existing is not None:
            if existing.params.get("store") != store:
                raise Conflict(
                    f"App {app.app_id} is already being moved to store {existing.params.get('store')}: "
                    "run that move again to resume it.",
                    status="moving",
                )
            if existing.state in ACTIVE:
                return existing, False
            existing.state, existing.error, existing.run_after, existing.finished_at = (
                Job.State.SCHEDULED,
                "",
                timezone.now(),
                None,
            )
            existing.save(update_fields=["state", "error", "run_after", "finished_at"])
            _audit_job(scope, existing, "app.move_resumed", store=store)
            _enqueue_on_commit(existing)
            return existing, False
        if app.status != App.Status.ACTIVE:
            raise Conflict(
                f"App {app.app_id} is {app.get_status_display().lower()}: only an active app moves.", status=app.status
            )
        if app.store == store:
            raise ValidationError(f"App {app.app_id} is already on store {store}.", field="store")
        job = Job.objects.create(
            kind=Job.Kind.MOVE_APP,
            tenant=app.tenant,
            app=app,
            requested_by=scope.actor,
            params={"app_id": app.app_id, "store": store, "from": app.store or DEFAULT_STORE, "role": scope.role},
        )
        App.objects.filter(pk=app.pk).update(status=App.Status.MOVING)
        _audit_job(scope, job, "app.move_requested", store=store, source=job.params["from"])
        _enqueue_on_commit(job)
    return job, True


def job_erase_user(*, scope: Scope, user_id: str) -> tuple[Job, bool]:
    """Erase one end user across every app of the tenant, in the background."""
    scope.require(cap.DELETE)
    user_id = clean_id(user_id, "user_id")
    if scope.user_id is not None and scope.user_id != user_id:
        raise NotFound()
    return job_erase(scope=scope, filters=filter_from_fields(user_id=user_id))


def job_erase(*, scope: Scope, filters: Node, reason: str = "requested") -> tuple[Job, bool]:
    """Run the deletion engine over ``filters`` in the background (a user, a run, an agent); a second
    request for the same filters while one runs returns the first job."""
    scope.require(cap.DELETE)
    check_holds(scope=scope, filters=filters)
    user_id = pinned_value(scope.narrowed(filters), "user_id")
    data = node_to_data(filters)
    # The job acts on the requester's apps, never the tenant's: an app-restricted key or an end user's
    # link must not erase in apps it cannot see (job_scope rebuilds the scope from this list).
    app_pks = sorted(app.pk for app in scope.apps)
    with transaction.atomic():
        _lock(Tenant, scope.tenant_id)
        existing = Job.objects.filter(
            kind=Job.Kind.ERASE_USER,
            tenant_id=scope.tenant_id,
            state__in=ACTIVE,
            params__filters=data,
            params__app_pks=app_pks,
        ).first()
        if existing is not None:
            return existing, False
        job = Job.objects.create(
            kind=Job.Kind.ERASE_USER,
            tenant_id=scope.tenant_id,
            requested_by=scope.actor,
            params={"user_id": user_id, "filters": data, "reason": reason, "role": scope.role, "app_pks": app_pks},
        )
        _audit_job(scope, job, "user.erase_requested", reason=reason)
        _enqueue_on_commit(job)
    return job, True


def erasure_request(*, scope: Scope, filters: Node) -> DeletionResult | Job:
    """Every caller's way to delete memories by filter (dashboard, your-data page, API).

    Small scopes over healthy indexes are deleted and verified now; the rest goes to the same engine
    in a job (over MEMADMIN_ERASURE_SYNC_LIMIT memories, or an index that cannot vouch for a count
    of 0) whose receipt follows."""
    result = memory_delete_matching(scope=scope, filters=filters)
    if not result.deferred:
        if pinned_value(scope.narrowed(filters), "user_id") is not None:
            apps = [app_id for app_id, line in result.per_app.items() if line["memories"]]
            result.exports_deleted = (
                exports_delete_for_erasure(tenant_id=scope.tenant_id, app_ids=apps, before=timezone.now())
                if apps
                else 0
            )
        if not result.remaining:
            person_erased_check(scope=scope, filters=filters)
        return result
    job, _ = job_erase(scope=scope, filters=filters, reason=result.deferred)
    return job


def person_erased_check(*, scope: Scope, filters: Node) -> None:
    """After a verified deletion: if it was all of one person in every live app of the tenant (staff, or a link
    issued for all the apps), they leave the people recently seen."""
    user_id = pinned_value(scope.narrowed(filters), "user_id")
    if user_id is None or filters not in (filter_from_fields(user_id=user_id), EVERYTHING):
        return
    live = set(
        App.objects.filter(tenant_id=scope.tenant_id).exclude(status=App.Status.OFFBOARDED).values_list("pk", flat=True)
    )
    if live <= {app.pk for app in scope.apps}:
        end_user_erased(scope=scope, user_id=user_id)


def job_export(
    *, scope: Scope, app_id: str | None = None, fmt: str = "ndjson", compress: bool = False, filters: Node | None = None
) -> Job:
    """Export one app, or the whole tenant (app_id=None), to a file under DATA_DIR/exports; ``filters`` narrows
    it to what a memory table selected."""
    scope.require(cap.EXPORT_APP)
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"format must be one of {', '.join(EXPORT_FORMATS)}.", field="format")
    app = None
    if app_id:
        ref = scope.app_named(app_id)
        app = App.objects.get(pk=ref.pk)
    kind = Job.Kind.EXPORT_APP if app else Job.Kind.EXPORT_TENANT
    params = {"format": fmt, "gzip": bool(compress), "app_id": app.app_id if app else None, "role": scope.role}
    if filters is not None:  # a memory table's selection (not "filters": an erasure job's params use that name)
        params["selection"] = node_to_data(filters)
    with transaction.atomic():
        _lock(Tenant, scope.tenant_id)
        existing = Job.objects.filter(
            kind=kind, tenant_id=scope.tenant_id, app=app, params=params, state__in=ACTIVE
        ).first()
        if existing is not None:
            return existing
        job = Job.objects.create(kind=kind, tenant_id=scope.tenant_id, app=app, requested_by=scope.actor, params=params)
        _audit_job(scope, job, "export.requested", format=fmt)
        _enqueue_on_commit(job)
    return job


def job_import(
    *, scope: Scope, app_id: str, source: Path | str, filename: str, skip_invalid: bool = False, move: bool = False
) -> Job:
    """Import a file of memories into one app in the background (tenants/import_files.py says which files).

    The file is kept under DATA_DIR/imports until the job ends. ``skip_invalid``: import the valid rows and
    list the bad ones in the receipt; otherwise one bad row refuses the whole file before anything is written."""
    scope.require(cap.WRITE)
    ref = scope.app_named(app_id)
    if not ref.writable:
        raise Conflict(f"App {ref.app_id} is frozen for offboarding and accepts no imports.", status="frozen")
    try:
        stored = import_store(Path(source), move=move)
    except ImportFileError as exc:
        raise ValidationError(str(exc), field="file") from None
    params = {
        "app_id": ref.app_id,
        "role": scope.role,
        "file": stored["path"],
        "filename": str(filename)[:200],
        "bytes": stored["bytes"],
        "sha256": stored["sha256"],
        "skip_invalid": bool(skip_invalid),
    }
    with transaction.atomic():
        job = Job.objects.create(
            kind=Job.Kind.IMPORT_APP, tenant_id=scope.tenant_id, app_id=ref.pk, requested_by=scope.actor, params=params
        )
        _audit_job(
            scope, job, "import.requested", filename=params["filename"], bytes=stored["bytes"], sha256=stored["sha256"]
        )
        _enqueue_on_commit(job)
    return job


def job_retention(*, policy: RetentionPolicy) -> Job | None:
    """Schedule one app's retention sweep (the periodic sweep calls this; so can an admin)."""
    app = policy.app
    if app.status != App.Status.ACTIVE or not policy.enabled:
        return None
    if not (policy.max_age_days or policy.idle_run_days):
        return None
    with transaction.atomic():
        _lock(App, app.pk)
        existing = Job.objects.filter(kind=Job.Kind.RETENTION, app=app, state__in=ACTIVE).first()
        if existing is not None:
            return existing
        job = Job.objects.create(
            kind=Job.Kind.RETENTION,
            tenant_id=app.tenant_id,
            app=app,
            requested_by="retention-policy",
            params={"app_id": app.app_id, "max_age_days": policy.max_age_days, "idle_run_days": policy.idle_run_days},
        )
        RetentionPolicy.objects.filter(pk=policy.pk).update(last_swept_at=timezone.now())
        _enqueue_on_commit(job)
    return job


def job_cancel(*, scope: Scope, job: Job) -> Job:
    """Scheduled (grace period) or failed jobs are cancelled outright. A running export, erasure or
    retention stops after its current batch with a receipt of what it did; a running offboarding
    cannot stop halfway."""
    if job.tenant_id != scope.tenant_id:
        raise NotFound("Job not found.")
    scope.require(CANCEL_NEEDS[job.kind])
    with transaction.atomic():
        _lock(Job, job.pk)
        job.refresh_from_db()
        if job.state in (Job.State.SUCCEEDED, Job.State.CANCELLED):
            raise Conflict(f"This job has already {job.state}.")
        if job.state == Job.State.RUNNING and job.kind == Job.Kind.OFFBOARD_APP:
            raise Conflict("The offboarding is deleting now and cannot stop halfway; it will finish with a receipt.")
        if job.kind == Job.Kind.MOVE_APP and (job.state == Job.State.RUNNING or job.progress.get("cursor")):
            # Abandoned halfway, the copy would stay on the target, out of reach of later erasures.
            raise Conflict(
                "This move has begun copying and cannot be abandoned halfway: run it again (Move) to "
                "resume it; it finishes with a receipt."
            )
        if job.kind == Job.Kind.ERASE_USER and job.requested_by.startswith("enduser:"):
            # The person's own request (GDPR Art. 17): staff cannot withdraw it; a legal hold refuses it upfront.
            raise Conflict("This erasure was asked for by the person themselves and cannot be cancelled.")
        was = job.state
        job.state = Job.State.CANCELLED
        job.finished_at = timezone.now()
        job.save(update_fields=["state", "finished_at"])
        if job.kind == Job.Kind.OFFBOARD_APP and job.app_id and not job.progress.get("cursor"):
            # Nothing was deleted yet: the app goes back to work.
            App.objects.filter(pk=job.app_id, status=App.Status.FROZEN).update(status=App.Status.ACTIVE)
        if job.kind == Job.Kind.MOVE_APP and job.app_id:  # nothing was copied yet (refused above otherwise)
            App.objects.filter(pk=job.app_id, status=App.Status.MOVING).update(status=App.Status.ACTIVE)
        _audit_job(scope, job, "job.cancelled", was=was)
    if was != Job.State.RUNNING and job.result_file:
        Path(job.result_file).unlink(missing_ok=True)
    if was != Job.State.RUNNING and job.kind == Job.Kind.IMPORT_APP and job.params.get("file"):
        Path(job.params["file"]).unlink(missing_ok=True)
    return job


def job_scope(job: Job) -> Scope:
    """The apps a job acts on: its app, or the requester's apps recorded when it was made (an app created
    since is not added; an offboarded one drops out), or for tenant-wide jobs the tenant's apps."""
    if job.app_id:
        return scope_for_job(job, apps=[job.app])
    if "app_pks" in job.params:
        return scope_for_job(job, apps=job.tenant.apps.filter(pk__in=job.params["app_pks"]).order_by("pk"))
    return scope_for_job(job)
