"""manage.py move_app <tenant> <app> <store> [--yes]: the move job, run here, with a progress bar."""

import getpass

from django.core.management.base import BaseCommand, CommandError

from memadmin.memory.collections import DEFAULT_STORE, store_names
from memadmin.memory.errors import MemoryServiceError
from tenants.jobs.follow import job_run_here, receipt_write
from tenants.jobs.models import Job
from tenants.jobs.services import job_move_app
from tenants.models import App, Tenant
from tenants.scoping import scope_for_job


class Command(BaseCommand):
    help = (
        "Move an app to another memory store (default, or a name from MEMADMIN_STORES): copy, verify, switch, "
        "delete the original; the app is frozen meanwhile. Run again to resume a failed move."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("app", help="app_id")
        parser.add_argument("store", help="the store to move it to")
        parser.add_argument("--yes", action="store_true", help="do not ask to type the app_id")
        parser.add_argument("--receipt", metavar="PATH", help="also write the receipt JSON to PATH")

    def handle(self, *args, tenant, app, store, yes=False, receipt=None, **options):
        try:
            tenant_obj = Tenant.objects.get(slug=tenant)
            app_obj = App.objects.get(tenant=tenant_obj, app_id=app)
        except (Tenant.DoesNotExist, App.DoesNotExist):
            raise CommandError(f"No app {app!r} in tenant {tenant!r}.") from None
        if store not in store_names():
            raise CommandError(f"No store {store!r}: the stores are {', '.join(store_names())}.")
        self.stdout.write(
            f"{tenant}/{app} (collection {app_obj.collection_name}) is on store "
            f"{app_obj.store or DEFAULT_STORE}; moving it to {store}."
        )
        if not yes:
            typed = input(f"Type the app_id ({app}) to freeze it and move it: ").strip()
            if typed != app:
                raise CommandError("Not confirmed; nothing was changed.")
        scope = scope_for_job(Job(tenant=tenant_obj, requested_by=f"cli:{getpass.getuser()}"))
        try:
            job, _ = job_move_app(scope=scope, app_id=app, store=store)
        except MemoryServiceError as exc:
            raise CommandError(exc.message) from exc
        job_run_here(job, desc="move")
        job.refresh_from_db()
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(
                f"The move {job.state}: {job.error or 'see the job page'} (job {job.pk}). "
                "Run the command again to resume it."
            )
        move = job.receipt["move"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Moved {tenant}/{app} from {move['from']} to {move['to']}: {move['target_keys']} memories copied and "
                f"indexed ({move['target_documents']} documents, {move['target_indexing_failures']} failures), "
                f"{move['source_deleted']} deleted from {move['from']}, remaining 0 verified at "
                f"{job.receipt['verified_at']}. Job {job.pk}."
            )
        )
        receipt_write(job, receipt, self.stdout)
