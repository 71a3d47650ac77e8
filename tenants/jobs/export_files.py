"""Export files: streamed from the memory service to DATA_DIR/exports, one memory in memory at a time.

A file is written as ``<name>.partial`` and renamed when complete, so a download
link never points at half an export; any failure removes the partial file.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q

from tenants.export_formats import export_filename, export_lines
from tenants.jobs.models import Job


class ExportFailed(Exception):
    """The file could not be written; the message is for the person who asked for it."""


def exports_dir() -> Path:
    return Path(settings.DATA_DIR) / "exports"


def job_export_filename(job, fmt: str, compress: bool) -> str:
    stem = export_filename(job.tenant.slug, job.params.get("app_id") or "tenant", str(job.pk)[:8], at=job.created_at)
    return f"{stem}.{fmt}" + (".gz" if compress else "")


def write_export(
    *,
    items: Iterable[dict],
    path: Path,
    fmt: str,
    compress: bool,
    progress: Callable[[int], None] | None = None,
    every: int = 500,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Write every item to ``path``; returns {count, bytes, sha256}. Raises ExportFailed with the partial
    file removed when the disk is full or unwritable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    count = 0

    def tracked():
        nonlocal count
        for item in items:
            yield item
            count += 1  # runs when the writer asks for the next item: this one is written
            if count % every == 0:
                if should_stop and should_stop():
                    raise ExportFailed("The export was cancelled.")
                if progress:
                    progress(count)

    try:
        raw = open(partial, "wb")  # noqa: SIM115 - closed below, also on failure
        try:
            binary = gzip.GzipFile(fileobj=raw, mode="wb") if compress else raw
            text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
            for piece in export_lines(tracked(), fmt):
                text.write(piece)
            text.flush()
            text.detach()
            if compress:
                binary.close()
            raw.flush()
            os.fsync(raw.fileno())
        finally:
            raw.close()
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ExportFailed(
                f"The disk holding {path.parent} is full: the export stopped after {count} memories and its "
                "partial file was removed. Free some space (or point MEMADMIN_DATA_DIR at a larger disk) and "
                "export again."
            ) from exc
        raise ExportFailed(f"The export could not be written to {path.parent}: {exc.strerror or exc}.") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"count": count, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


# --- erasure reaches the export files -------------------------------------------------------

ERASED_KEY = "memadmin:erased-at:{tenant_id}"  # the cache: when the tenant's last person erasure ended (epoch)
ERASED_TTL = 7 * 86400  # longer than any export runs


def exports_delete_for_erasure(*, tenant_id, app_ids, before) -> int:
    """Delete the export files that may hold an erased person's memories: every export of the tenant made before
    the erasure ended, of an app the person had memories in or of the whole tenant (an export file says whose
    memories it holds only inside it, so this is conservative). Exports still being written learn of the erasure
    through the cache and throw their file away (export_erased_since). Returns how many files were deleted."""
    cache.set(ERASED_KEY.format(tenant_id=tenant_id), before.timestamp(), ERASED_TTL)
    jobs = Job.objects.filter(
        tenant_id=tenant_id, kind__in=(Job.Kind.EXPORT_APP, Job.Kind.EXPORT_TENANT), created_at__lte=before
    ).exclude(result_file="")
    jobs = jobs.filter(Q(kind=Job.Kind.EXPORT_TENANT) | Q(app__app_id__in=list(app_ids)))
    deleted = 0
    for job in jobs:
        path = Path(job.result_file)
        if path.exists():
            path.unlink(missing_ok=True)
            deleted += 1
        Job.objects.filter(pk=job.pk).update(result_file="")
    return deleted


def export_erased_since(*, tenant_id, started) -> bool:
    """Did a person's erasure end in this tenant after ``started`` (an export began then)?"""
    erased = cache.get(ERASED_KEY.format(tenant_id=tenant_id))
    return erased is not None and float(erased) >= started.timestamp()
