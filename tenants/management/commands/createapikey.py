"""Create a tenant API key and print it once: only its hash is stored."""

from django.core.management.base import BaseCommand, CommandError

from memadmin.memory.errors import ValidationError
from tenants.keys import api_key_create
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Create an API key for a tenant (optionally restricted to some apps) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="The tenant's slug.")
        parser.add_argument("--name", required=True, help="What the key is for; audit events say key:<name>.")
        parser.add_argument(
            "--app", action="append", default=[], metavar="APP_ID", help="Restrict the key to this app (repeatable)."
        )
        parser.add_argument(
            "--no-offboard", action="store_true",
            help="delete_all(app_id=...) with this key gets 403 instead of offboarding the app (restricted keys never "
            "offboard).",
        )  # fmt: skip

    def handle(self, *args, tenant, name, app, no_offboard=False, **options):
        name = name.strip()
        if not name:
            raise CommandError("--name cannot be empty.")
        try:
            tenant_row = Tenant.objects.get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {tenant!r}.") from None
        try:
            api_key, key = api_key_create(tenant=tenant_row, name=name, app_ids=app, may_offboard=not no_offboard)
        except ValidationError as exc:
            raise CommandError(exc.message) from None
        apps = [a.app_id for a in api_key.apps.all()]
        scope = ", ".join(apps) if apps else "every app"
        self.stderr.write(f"Key {name!r} (prefix {api_key.prefix}) for {tenant_row.slug}, {scope}.")
        self.stderr.write("It is shown only now; store it somewhere safe:")
        self.stdout.write(key)
