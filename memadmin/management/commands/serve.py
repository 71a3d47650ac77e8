"""The run command's server: embedded Valkey (if VALKEY_URL is unset), a job worker, and gunicorn.

This process supervises the other three and owns their order: the store starts first and stops last
(after the web workers and the job worker have let go of it). Signals, as a service manager sends them:

- TERM or INT: gunicorn stops taking connections and finishes the requests in flight (up to
  MEMADMIN_WEB_GRACEFUL_TIMEOUT), the job worker is stopped (its job resumes from its progress on the
  next start), then the embedded Valkey is shut down.
- HUP: graceful reload. gunicorn starts workers on the code now on disk and retires the old ones once
  their requests are done; the job worker is restarted. The embedded Valkey keeps running.

The embedded Valkey is supervised like the other children (memadmin/memory/embedded.py Supervisor): if it
dies it is restarted on the same port and data dir, its load waited for however long it takes, and the web
workers and the job worker reconnect to it by themselves. A second serve on the same data dir is refused.

``manage.py runserver`` is still there for development (auto-reload, no embedder preload).
"""

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from memadmin.memory import embedders
from memadmin.memory.embedded import EmbeddedServer, EmbeddedValkeyError, Supervisor

WORKER_STOP_SECONDS = 20
WORKER_RESTART_SECONDS = 10


class Command(BaseCommand):
    help = (
        "Serve memadmin with gunicorn (workers and threads from MEMADMIN_WEB_WORKERS / MEMADMIN_WEB_THREADS), "
        "the embedded Valkey (unless VALKEY_URL is set) and one background job worker. HUP reloads, TERM stops."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "addrport", nargs="?", default=None, help="host:port or port (default MEMADMIN_BIND, else 127.0.0.1:8000)."
        )
        parser.add_argument("--no-worker", action="store_true", help="Do not start a background job worker.")
        parser.add_argument("--workers", type=int, help="Web worker processes (overrides MEMADMIN_WEB_WORKERS).")
        parser.add_argument("--threads", type=int, help="Threads per web worker (overrides MEMADMIN_WEB_THREADS).")

    def handle(self, *args, addrport=None, no_worker=False, workers=None, threads=None, **options):
        for name, value in (("--workers", workers), ("--threads", threads)):
            if value is not None and value < 1:
                raise CommandError(f"{name} must be at least 1.")
        self.requested: list[int] = []
        # Both end in the cleanup below, even when the shell that started us made SIGINT ignored
        # (background jobs of a non-interactive shell).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda signum, frame: self.requested.append(signum))
        supervisor = None
        if not settings.VALKEY_URL:
            supervisor = Supervisor(EmbeddedServer(settings.DATA_DIR, settings.MEMADMIN_VALKEY_PORT))
            self.stdout.write("Starting the embedded Valkey (a big store takes a while to load) ...")
            self.stdout.flush()
            try:
                running = supervisor.start(cancelled=lambda: bool(self.requested))
            except EmbeddedValkeyError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"Embedded Valkey (pid {running.pid}) at {running.display_url}, supervised")
        try:
            exported = embedders.prepare_embedder()
        except Exception as exc:  # noqa: BLE001 - the workers run the model on torch instead, as they log too
            self.stderr.write(f"The embedding model could not be exported to ONNX ({exc}); it runs on torch.")
        else:
            if exported is not None:
                self.stdout.write(f"Embedding model on ONNX Runtime: {exported}")
        self.worker = self.worker_started = None
        web = None
        code = 0
        try:
            if not no_worker:
                self.start_worker()
            web = subprocess.Popen(self.gunicorn_argv(addrport, workers, threads))
            code = self.supervise(web)
        finally:
            if web is not None:
                stop(web, signal.SIGTERM, graceful_timeout() + 10)
            if self.worker is not None:
                stop(self.worker, signal.SIGTERM, WORKER_STOP_SECONDS)
            if supervisor is not None:
                supervisor.stop()
                self.stdout.write("Embedded Valkey stopped.")
        if code:
            raise CommandError(f"gunicorn exited with code {code}.")

    def gunicorn_argv(self, addrport, workers, threads) -> list[str]:
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:memadmin.gunicorn_conf"]
        if addrport:
            argv += ["--bind", f"127.0.0.1:{addrport}" if addrport.isdigit() else addrport]
        if workers:
            argv += ["--workers", str(workers)]
        if threads:
            argv += ["--threads", str(threads)]
        return argv

    def start_worker(self) -> None:
        self.worker = subprocess.Popen([sys.executable, str(settings.BASE_DIR / "manage.py"), "worker"])
        self.worker_started = time.monotonic()

    def supervise(self, web: subprocess.Popen) -> int:
        """Wait for a signal or for gunicorn to exit; gunicorn's exit code (0 after a requested stop)."""
        while True:
            try:
                code = web.wait(timeout=1)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None:
                if self.requested:
                    return 0
                self.stderr.write(f"gunicorn exited on its own (code {code}); stopping.")
                return code or 1
            while self.requested:
                if self.requested.pop(0) != signal.SIGHUP:
                    return 0
                self.stdout.write("Reloading: new web workers on the code on disk; the job worker restarts.")
                web.send_signal(signal.SIGHUP)
                if self.worker is not None:
                    stop(self.worker, signal.SIGTERM, WORKER_STOP_SECONDS)
                    self.start_worker()
            # A job worker that died is replaced, but not in a tight loop when it cannot start at all.
            if self.worker is not None and self.worker.poll() is not None:
                if time.monotonic() - self.worker_started >= WORKER_RESTART_SECONDS:
                    self.stderr.write(f"The job worker exited (code {self.worker.returncode}); starting another.")
                    self.start_worker()


def graceful_timeout() -> int:
    from memadmin import gunicorn_conf

    return gunicorn_conf.graceful_timeout


def stop(process: subprocess.Popen, signum: int, seconds: float) -> None:
    if process.poll() is None:
        process.send_signal(signum)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
