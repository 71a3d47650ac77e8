"""Importing a file of memories into one app, batch by batch, journaled so that a resumed job counts once."""

from __future__ import annotations

from pathlib import Path

from memadmin.memory.collections import (
    ImportRow,
    import_row,
    memory_import_plan,
    memory_import_write,
)
from memadmin.memory.errors import ValidationError
from tenants.import_files import MAX_LISTED_BAD, ImportFileError, import_items
from tenants.jobs.models import Job
from tenants.jobs.receipts import build_receipt
from tenants.jobs.run import JobFailed, Run
from tenants.jobs.services import job_scope

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
        "file": job.params.get("filename"),
        "bytes": job.params.get("bytes"),
        "sha256": job.params.get("sha256"),
        "format": cursor.get("format"),
        "valid_rows": cursor.get("valid", 0),
        "imported": cursor.get("imported", 0),
        "history_rows": cursor.get("history_rows", 0),
        "duplicates": {"same_id": cursor.get("duplicate_ids", 0), "same_hash": cursor.get("duplicate_hashes", 0)},
        "malformed": cursor.get("bad_total", 0),
        "malformed_unit": unit,
        "malformed_rows": cursor.get("bad", []),
        "malformed_listed": len(cursor.get("bad", [])),
        "skip_invalid": bool(job.params.get("skip_invalid")),
    }


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
    if pending:  # the run that crashed may have created some of these rows already: they count once, here
        cursor["imported"] += written["memories"] + written["existing"]
    else:  # an id stored by someone else since the plan was left alone: a duplicate
        cursor["imported"] += written["memories"]
        cursor["duplicate_ids"] += written["existing"]
    # A resumed batch may have written its history before the crash (INSERT OR IGNORE then writes 0 rows).
    cursor["history_rows"] += sum(len(row.history) for row in new) if pending else written["history_rows"]
    cursor["done"] += len(new)
    cursor.update(position=batch[-1][0], pending=None)
    run.save(cursor)


def run_import(run: Run) -> dict:
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
        cursor.update(
            format=fmt,
            valid=valid,
            bad=bad,
            bad_total=bad_total,
            position=0,
            pending=None,
            done=0,
            imported=0,
            duplicate_ids=0,
            duplicate_hashes=0,
            history_rows=0,
        )
        run.save(cursor, total=valid)
        if bad_total and not job.params.get("skip_invalid"):
            unit = "line" if fmt == "ndjson" else "item"
            first = "; ".join(f"{unit} {b['at']}: {b['reason']}" for b in bad[:3])
            run.save(
                receipt=build_receipt(
                    job, per_app={}, verified_at=None, status="refused", extra={"import": import_summary(job, cursor)}
                )
            )
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
    line = {"memories": cursor["imported"], "history_rows": cursor["history_rows"]}
    return {"per_app": {app_id: line}, "verified_at": None, "extra": {"import": import_summary(job, cursor)}}
