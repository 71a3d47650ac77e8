"""A job's progress in words, for the job list, its page and the import page (``Job.progress_text``)."""

from __future__ import annotations


def job_progress_text(job) -> str:
    """An import's "done" counts the rows it has been through, duplicates included: it says how many it
    imported and how many were already stored, never "4 / 4" for an import of 4 duplicates that imported
    nothing. Other jobs count memories: "done / total"."""
    if not job.is_import:
        return f"{job.done} / {job.total}" if job.total else str(job.done)
    summary = (job.receipt or {}).get("import") or (job.progress or {}).get("cursor") or {}
    imported = int(summary.get("imported") or 0)
    duplicates = summary.get("duplicates")
    if isinstance(duplicates, dict):
        skipped = sum(int(n or 0) for n in duplicates.values())
    else:
        skipped = int(summary.get("duplicate_ids") or 0) + int(summary.get("duplicate_hashes") or 0)
    if job.is_running and not job.done:
        # The first batch waits for the embedder (a worker's first embedding loads the model): say so.
        return f"0 of {job.total} rows: embedding the first batch" if job.total else "reading the file"
    text = f"{imported} imported of {job.total} row{'' if job.total == 1 else 's'}"
    return text + (f", {skipped} already stored" if skipped else "")
