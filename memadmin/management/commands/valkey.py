from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from memadmin.memory.embedded import EmbeddedServer, EmbeddedValkeyError


class Command(BaseCommand):
    help = "Run the embedded Valkey (with the search module) in the foreground, or --status / --url / --stop it."

    def add_arguments(self, parser):
        parser.add_argument("--status", action="store_true", help="Print whether it runs; its URL without password.")
        parser.add_argument(
            "--url",
            action="store_true",
            help='Print only the URL with its password: valkey-cli -u "$(python manage.py valkey --url)"',
        )
        parser.add_argument("--stop", action="store_true", help="Stop the running embedded server.")

    def handle(self, *args, status=False, url=False, stop=False, **options):
        if settings.VALKEY_URL:
            raise CommandError("VALKEY_URL is set: the embedded server is not used.")
        server = EmbeddedServer(settings.DATA_DIR, settings.MEMADMIN_VALKEY_PORT)
        if status or url:
            running = server.running()
            if not running:
                if url:
                    raise CommandError("The embedded Valkey is not running.")
                supervisor = server.supervisor()
                recorded = server.recorded()
                if supervisor is not None and recorded is not None:
                    self.stdout.write(
                        f"not running; its supervisor (memadmin serve, pid {supervisor}) is "
                        f"restarting it on port {recorded.port}"
                    )
                    return
                self.stdout.write("not running")
                return
            if url:
                self.stdout.write(running.url)
                return
            self.stdout.write(f"running (pid {running.pid}) at {running.display_url}")
            supervisor = server.supervisor()
            if supervisor is not None:
                self.stdout.write(f"supervised by memadmin serve (pid {supervisor}): restarted if it dies")
            state = server.auth_state(running)
            if state == "no-password":
                self.stdout.write(
                    "WARNING: it requires no password (started by an older version); the next "
                    "memadmin process to use it sets one."
                )
            elif state == "wrong-password":
                self.stdout.write(
                    f"WARNING: it does not accept the password in {server.directory / 'password'}; "
                    "restart it with --stop."
                )
            else:
                self.stdout.write(
                    f"password in {server.directory / 'password'}; "
                    "`python manage.py valkey --url` prints the URL with it"
                )
            return
        if stop:
            try:
                stopped = server.stop()
            except EmbeddedValkeyError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"stopped pid {stopped.pid}" if stopped else "not running")
            return
        try:
            code = server.run_foreground(
                on_ready=lambda r: self.stdout.write(
                    f"Embedded Valkey (pid {r.pid}) serving {r.display_url}\n"
                    f"password in {server.directory / 'password'}; data and AOF in {server.directory}"
                    "  -- Ctrl-C to stop"
                )
            )
        except EmbeddedValkeyError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"valkey-server exited with code {code}")
