"""manage.py offboard <tenant> <app> [--export PATH] [--yes]: the offboarding job, run here, with a progress bar."""

import getpass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memadmin.memory import selectors
from memadmin.memory.collections import app_summary
from memadmin.memory.errors import MemoryServiceError
from memadmin.memory.filters import filter_from_fields
from tenants.export_formats import FORMATS
from tenants.jobs.export_files import ExportFailed, write_export
from tenants.jobs.follow import job_run_here, receipt_write
from tenants.jobs.models import Job
from tenants.jobs.services import job_offboard_app
from tenants.models import App, Tenant
from tenants.scoping import scope_for_job


def _format_of(path: Path) -> tuple[str, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    compress = bool(suffixes) and suffixes[-1] == ".gz"
    if compress:
        suffixes = suffixes[:-1]
    fmt = suffixes[-1].lstrip(".") if suffixes else "ndjson"
    if fmt not in FORMATS:
        raise CommandError("--export must end in .ndjson, .json or .csv (optionally .gz).")
    return fmt, compress


class Command(BaseCommand):
    help = "Offboard an app: delete every memory, history row and message it stored, verified, with a receipt."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("app", help="app_id")
        parser.add_argument("--export", metavar="PATH", help="export the app to PATH first (.ndjson/.json/.csv[.gz])")
        parser.add_argument("--yes", action="store_true", help="do not ask to type the app_id")
        parser.add_argument("--receipt", metavar="PATH", help="also write the receipt JSON to PATH")

    def handle(self, *args, tenant, app, export=None, yes=False, receipt=None, **options):
        try:
            tenant_obj = Tenant.objects.get(slug=tenant)
            app_obj = App.objects.get(tenant=tenant_obj, app_id=app)
        except (Tenant.DoesNotExist, App.DoesNotExist):
            raise CommandError(f"No app {app!r} in tenant {tenant!r}.") from None
        if app_obj.status == App.Status.OFFBOARDED:
            raise CommandError(f"{tenant}/{app} is already offboarded.")
        actor = f"cli:{getpass.getuser()}"
        scope = scope_for_job(Job(tenant=tenant_obj, requested_by=actor))
        try:
            summary = app_summary(scope=scope, app_id=app)
        except MemoryServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{tenant}/{app} (collection {summary['collection']}) holds {summary['memories']} memories of "
            f"{summary['users']} users, {summary['agents']} agents, {summary['runs']} runs; "
            f"{summary['history_rows']} history rows and {summary['messages']} messages."
        )
        if export:
            self._export(scope, app, Path(export), summary["memories"])
        if not yes:
            typed = input(f"Type the app_id ({app}) to delete all of it for good: ").strip()
            if typed != app:
                raise CommandError("Not confirmed; nothing was deleted.")
        try:
            job, _ = job_offboard_app(scope=scope, app_id=app, grace_hours=0)
        except MemoryServiceError as exc:
            raise CommandError(exc.message) from exc
        job_run_here(job, desc="offboard")
        job.refresh_from_db()
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(f"The offboarding {job.state}: {job.error or 'see the job page'} (job {job.pk})")
        totals = job.receipt["totals"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Offboarded {tenant}/{app}: {totals['memories']} memories, {totals['history_rows']} history rows, "
                f"{totals['messages']} messages deleted; remaining 0 verified at {job.receipt['verified_at']}. "
                f"Job {job.pk}."
            )
        )
        receipt_write(job, receipt, self.stdout)

    def _export(self, scope, app_id: str, path: Path, total: int) -> None:
        fmt, compress = _format_of(path)
        bar = tqdm(total=total, unit="mem", desc="export")
        seen = {"n": 0}

        def progress(n):
            bar.update(n - seen["n"])
            seen["n"] = n

        items = selectors.memory_export(scope=scope, filters=filter_from_fields(app_id=app_id))
        try:
            written = write_export(items=items, path=path, fmt=fmt, compress=compress, progress=progress, every=200)
        except (ExportFailed, MemoryServiceError) as exc:
            raise CommandError(f"Export failed, nothing was deleted: {exc}") from exc
        finally:
            items.close()
            bar.close()
        self.stdout.write(f"Exported {written['count']} memories to {path} (sha256 {written['sha256']})")
