"""Create a tenant API key and print it once: only its hash is stored."""

import argparse
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from memadmin.memory.errors import ValidationError
from tenants.keys import api_key_create
from tenants.models import Tenant


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("give the day as YYYY-MM-DD") from None


class Command(BaseCommand):
    help = "Create an API key for a tenant (optionally restricted to some apps) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="The tenant's slug.")
        parser.add_argument("--name", required=True, help="What the key is for; audit events say key:<name>.")
        parser.add_argument(
            "--app", action="append", default=[], metavar="APP_ID", help="Restrict the key to this app (repeatable)."
        )
        parser.add_argument(
            "--no-offboard",
            action="store_true",
            help="delete_all(app_id=...) with this key gets 403 instead of offboarding the app (restricted keys never "
            "offboard).",
        )
        parser.add_argument(
            "--read-only",
            action="store_true",
            help="The key searches, gets, lists and exports; every write or deletion gets 403.",
        )
        parser.add_argument(
            "--expires", metavar="YYYY-MM-DD", type=_day, help="Refuse the key (401) from the start of this day."
        )

    def handle(self, *args, tenant, name, app, no_offboard=False, read_only=False, expires=None, **options):
        name = name.strip()
        if not name:
            raise CommandError("--name cannot be empty.")
        try:
            tenant_row = Tenant.objects.get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {tenant!r}.") from None
        try:
            api_key, key = api_key_create(
                tenant=tenant_row,
                name=name,
                app_ids=app,
                may_offboard=not no_offboard,
                read_only=read_only,
                expires=expires,
            )
        except ValidationError as exc:
            raise CommandError(exc.message) from None
        apps = [a.app_id for a in api_key.apps.all()]
        scope = ", ".join(apps) if apps else "every app"
        more = (", read-only" if api_key.read_only else "") + (f", expires {expires}" if expires else "")
        self.stderr.write(f"Key {name!r} (prefix {api_key.prefix}) for {tenant_row.slug}, {scope}{more}.")
        self.stderr.write("It is shown only now; store it somewhere safe:")
        self.stdout.write(key)
