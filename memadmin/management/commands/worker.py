"""python manage.py worker: one Celery worker for the background jobs, with the periodic sweep (beat) inside."""

import os

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Start a background job worker (Celery, on the memory store's Valkey). By default it also runs the "
        "periodic sweep (Celery beat: due and lost jobs, retention, expired exports); run exactly one "
        "process with the sweep per deployment and start the others with --no-beat."
    )

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=2, help="Jobs run at once (default 2).")
        parser.add_argument("--no-beat", action="store_true", help="Do not run the periodic sweep here.")
        parser.add_argument("--loglevel", default="INFO")
        parser.add_argument("--pool", default="prefork", choices=("prefork", "solo", "threads"))

    def handle(self, *args, concurrency, no_beat, loglevel, pool, **options):
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1.")
        from memadmin.celery import app
        from memadmin.memory.errors import StoreUnavailable

        try:
            broker = app.conf.broker_url  # starts (or reuses) the embedded Valkey
        except StoreUnavailable as exc:
            raise CommandError(exc.message) from exc
        self.wait_for_writes()
        self.stdout.write(
            f"Job worker on {broker.split('@')[-1]} (concurrency {concurrency}, sweep {'off' if no_beat else 'on'})"
        )
        argv = [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            f"--pool={pool}",
            "--without-gossip",
            "--without-mingle",
        ]
        if not no_beat:
            argv.append("--beat")
            os.environ["MEMADMIN_WORKER_PID"] = str(os.getpid())  # the beat child exits when this process dies
        app.worker_main(argv)

    def wait_for_writes(self, every: float = 2.0) -> None:
        """Celery's consumer dies at once ("Unrecoverable error") when Valkey answers its BRPOP with MISCONF (a
        full disk): started again and again by serve, it would die each time. Wait until the store accepts
        writes instead, saying so once."""
        import time

        from memadmin.memory.errors import StoreUnavailable
        from memadmin.memory.status import store_status

        said = False
        while True:
            try:
                writes = store_status()["writes"]
            except StoreUnavailable:
                return  # unreachable: Celery's own connection retries take it from here
            if writes == "ok":
                if said:
                    self.stdout.write("The memory store accepts writes again; starting the job worker.")
                return
            if not said:
                self.stderr.write(
                    f"The memory store {writes} (is its disk full?); the job worker waits until it "
                    "accepts writes again."
                )
                self.stderr.flush()
                said = True
            time.sleep(every)
