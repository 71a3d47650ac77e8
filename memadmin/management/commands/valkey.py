from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from memadmin.memory.embedded import EmbeddedServer, EmbeddedValkeyError


class Command(BaseCommand):
    help = "Run the embedded Valkey (with the search module) in the foreground, or --status / --stop it."

    def add_arguments(self, parser):
        parser.add_argument("--status", action="store_true", help="Print whether it runs, and its URL.")
        parser.add_argument("--stop", action="store_true", help="Stop the running embedded server.")

    def handle(self, *args, status=False, stop=False, **options):
        if settings.VALKEY_URL:
            raise CommandError(f"VALKEY_URL is set ({settings.VALKEY_URL}): the embedded server is not used.")
        server = EmbeddedServer(settings.DATA_DIR, settings.MEMADMIN_VALKEY_PORT)
        if status:
            running = server.running()
            if running:
                self.stdout.write(f"running (pid {running.pid}) at {running.url}")
            else:
                self.stdout.write("not running")
            return
        if stop:
            stopped = server.stop()
            self.stdout.write(f"stopped pid {stopped.pid}" if stopped else "not running")
            return
        try:
            code = server.run_foreground(
                on_ready=lambda r: self.stdout.write(
                    f"Embedded Valkey (pid {r.pid}) serving {r.url}\n"
                    f"data and AOF in {server.directory}  -- Ctrl-C to stop"
                )
            )
        except EmbeddedValkeyError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"valkey-server exited with code {code}")
