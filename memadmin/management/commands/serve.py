"""The run command's server: embedded Valkey (if VALKEY_URL is unset), a job worker, and the web server."""

import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from memadmin.memory.embedded import EmbeddedServer, EmbeddedValkeyError


class Command(BaseCommand):
    help = "Serve memadmin on 127.0.0.1:8000 with the embedded Valkey and one background worker."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true", help="Do not start a background job worker.")

    def handle(self, *args, addrport, no_worker=False, **options):
        # Ctrl-C and a service manager's SIGTERM both end in the cleanup below, even when the shell that
        # started us made SIGINT ignored (background jobs of a non-interactive shell).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        server = None
        if not settings.VALKEY_URL:
            server = EmbeddedServer(settings.DATA_DIR, settings.MEMADMIN_VALKEY_PORT)
            try:
                running = server.ensure()
            except EmbeddedValkeyError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"Embedded Valkey (pid {running.pid}) at {running.display_url}")
        worker = None
        if not no_worker:
            worker = subprocess.Popen([sys.executable, str(settings.BASE_DIR / "manage.py"), "worker"])
        try:
            call_command("runserver", addrport, use_reloader=False)
        except KeyboardInterrupt:
            pass
        finally:
            if worker is not None:
                worker.terminate()
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    worker.kill()
            if server is not None:
                server.stop()
                self.stdout.write("Embedded Valkey stopped.")
