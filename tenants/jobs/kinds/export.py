"""Exporting an app, or a whole tenant, to a file under DATA_DIR/exports."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from memadmin.memory import selectors
from memadmin.memory.filters import and_, filter_from_fields, node_from_data
from tenants.jobs.export_files import (
    ExportFailed,
    export_erased_since,
    exports_dir,
    job_export_filename,
    write_export,
)
from tenants.jobs.run import JobFailed, Run
from tenants.jobs.services import job_scope


def and_app(app_id: str, node):
    return and_(filter_from_fields(app_id=app_id), node)


def run_export(run: Run) -> dict:
    job = run.job
    scope = job_scope(job)
    fmt, compress = job.params.get("format", "ndjson"), bool(job.params.get("gzip"))
    filters = filter_from_fields(app_id=job.params.get("app_id"))
    if job.params.get("selection"):  # a memory table's selection
        filters = and_(filters, node_from_data(job.params["selection"]))
    run.save(run.cursor, total=selectors.memory_count(scope=scope, filters=filters))
    path = exports_dir() / job_export_filename(job, fmt, compress)
    items = selectors.memory_export(scope=scope, filters=filters)
    per_app: dict[str, dict] = {}

    def counted():
        # Counted as the writer takes each item: a finished export took them all, so the receipt's per-app
        # lines and totals add up to the file's count.
        for item in items:
            line = per_app.setdefault(item.get("app_id") or "", {"memories": 0})
            line["memories"] += 1
            yield item

    try:
        written = write_export(
            items=counted(),
            path=path,
            fmt=fmt,
            compress=compress,
            progress=lambda n: run.save({**run.cursor, "done": n}),
            should_stop=run.cancelled,
        )
    except ExportFailed as exc:
        raise JobFailed(str(exc)) from exc
    finally:
        items.close()
    run.cursor["done"] = written["count"]
    expires = timezone.now() + timedelta(hours=settings.MEMADMIN_EXPORT_TTL_HOURS)
    run.save(run.cursor, result_file=str(path), result_expires_at=expires)
    # Saved first, checked second: an erasure that ends meanwhile either sees this file or is seen here.
    if export_erased_since(tenant_id=job.tenant_id, started=job.started_at or job.created_at):
        path.unlink(missing_ok=True)
        run.save(result_file="")
        raise JobFailed(
            "A person's memories were erased while this export was being written, so the file was "
            "deleted (it could hold them). Export again."
        )
    if job.params.get("app_id"):  # an empty app still has its line, with 0
        per_app.setdefault(job.params["app_id"], {"memories": 0})
    return {
        "per_app": per_app,
        "verified_at": None,
        "extra": {
            "export": {"format": fmt, "gzip": compress, "file": path.name, "expires_at": expires.isoformat(), **written}
        },
    }
