"""manage.py index_health [--check] [--tenant SLUG]: each app's index health; exit 1 when one is unhealthy.

Without --check it reports what the last consistency check and FT.INFO say; with --check it first runs
a whole consistency pass per app (a throttled SCAN of that app's prefix, re-indexing what it can).
"""

from django.core.management.base import BaseCommand, CommandError

from memadmin.memory.collections import app_consistency_check, app_health
from memadmin.memory.errors import MemoryServiceError
from tenants.models import App


class Command(BaseCommand):
    help = "Show every app's index health (documents, keys, failures, last check); exit 1 if one is unhealthy."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Run a full consistency pass per app first.")
        parser.add_argument("--tenant", help="Only this tenant's apps (slug).")

    def handle(self, *args, check=False, tenant=None, **options):
        apps = (
            App.objects.select_related("tenant")
            .exclude(status=App.Status.OFFBOARDED)
            .order_by("tenant__slug", "app_id")
        )
        if tenant:
            apps = apps.filter(tenant__slug=tenant)
        unhealthy = 0
        for app in apps:
            try:
                ref = app.app_ref()
                if check:
                    health = app_consistency_check(app=ref)
                else:
                    health = app_health(app=ref, max_age=0)
            except MemoryServiceError as exc:
                raise CommandError(str(exc)) from exc
            state = "healthy" if health.healthy else "UNHEALTHY"
            keys = "?" if health.keys is None else health.keys
            self.stdout.write(
                f"{app.tenant.slug}/{app.app_id}  {state}  documents={health.num_docs} keys={keys} "
                f"failures={health.failures} missing={health.missing} repaired={health.repaired} "
                f"last_check={health.checked_at or 'never'}"
            )
            if not health.healthy:
                unhealthy += 1
                self.stdout.write(f"  {'; '.join(health.reasons)}")
                for key in health.unindexed_keys[:10]:
                    self.stdout.write(f"  not indexed: {key}")
        if unhealthy:
            raise CommandError(
                f"{unhealthy} app(s) have an unhealthy index: their erasures run as SCAN jobs.", returncode=1
            )
