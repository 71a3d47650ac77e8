"""manage.py import_mem0 <tenant> <app> FILE: import a Mem0 Platform or memadmin export into an app, here,
with a progress bar and a receipt (the same job the app page's upload runs)."""

import getpass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from memadmin.memory.errors import MemoryServiceError
from memadmin.memory.ids import clean_app_id
from tenants.app_services import app_create
from tenants.jobs.follow import job_run_here, receipt_write
from tenants.jobs.models import Job
from tenants.jobs.services import job_import
from tenants.models import App, Tenant
from tenants.scoping import scope_for_job


class Command(BaseCommand):
    help = (
        "Import memories into an app from a Mem0 Platform get_all / get_memory_export JSON file or a "
        "memadmin export (NDJSON or JSON, optionally gzipped); embeddings are recomputed."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("app", help="app_id")
        parser.add_argument("file", help="the file to import")
        parser.add_argument("--create", action="store_true", help="create the app if the tenant has none by that id")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid rows and list the malformed ones in the receipt (default: "
            "one malformed row refuses the whole file)",
        )
        parser.add_argument("--receipt", metavar="PATH", help="also write the receipt JSON to PATH")

    def handle(self, *args, tenant, app, file, create=False, skip_invalid=False, receipt=None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            tenant_obj = Tenant.objects.get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant {tenant!r}.") from None
        app_obj = App.objects.filter(tenant=tenant_obj, app_id=app).first()
        if app_obj is None:
            if not create:
                raise CommandError(f"No app {app!r} in tenant {tenant!r}; pass --create to make it.")
            try:
                app_obj = app_create(tenant=tenant_obj, app_id=clean_app_id(app), name=app)
            except MemoryServiceError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"Created app {tenant}/{app} (collection {app_obj.collection_name}).")
        if app_obj.status != App.Status.ACTIVE:
            raise CommandError(f"{tenant}/{app} is {app_obj.status}: it accepts no imports.")
        scope = scope_for_job(Job(tenant=tenant_obj, requested_by=f"cli:{getpass.getuser()}"))
        try:
            job = job_import(scope=scope, app_id=app, source=path, filename=path.name, skip_invalid=skip_invalid)
        except MemoryServiceError as exc:
            raise CommandError(exc.message) from exc
        job_run_here(job, desc="import")
        job.refresh_from_db()
        summary = (job.receipt or {}).get("import")
        receipt_write(job, receipt, self.stdout)
        if summary and summary["malformed_rows"]:
            for bad in summary["malformed_rows"]:
                self.stderr.write(f"  {summary['malformed_unit']} {bad['at']}: {bad['reason']}")
            if summary["malformed"] > summary["malformed_listed"]:
                self.stderr.write(f"  ... and {summary['malformed'] - summary['malformed_listed']} more")
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(f"The import {job.state}: {job.error or 'see the job page'} (job {job.pk})")
        dup = summary["duplicates"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {summary['imported']} memories and {summary['history_rows']} history rows into "
                f"{tenant}/{app}; "
                f"skipped {dup['same_id']} with an id already there, {dup['same_hash']} with a text the same user "
                f"already had, {summary['malformed']} malformed. Job {job.pk}."
            )
        )
