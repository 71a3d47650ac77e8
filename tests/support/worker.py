"""A real job worker process (python manage.py worker) on the test Valkey and test DB, and waiting for it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.databases import database_url

REPO = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, env: dict, log: Path):
        self.env, self.log, self.process = env, log, None

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--concurrency", "1", "--loglevel", "INFO"],
            cwd=REPO,
            env=self.env,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL reaches the pool child too
        )
        return self

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker(valkey_server, transactional_db, tmp_path):
    env = {
        **os.environ,
        "VALKEY_URL": valkey_server.url,
        "MEMADMIN_DATA_DIR": str(settings.DATA_DIR),
        "DATABASE_URL": database_url(connection.settings_dict),
        "MEMADMIN_INDEX_ALGORITHM": "flat",
        "MEMADMIN_JOB_BATCH_SIZE": "50",
        "MEMADMIN_JOB_LEASE_SECONDS": "2",
        "MEMADMIN_JOB_SWEEP_SECONDS": "1",
        "MEMADMIN_JOB_STORE_RETRY_SECONDS": "60",
        "LOG_LEVEL": "INFO",
    }
    workers = []

    def make():
        w = WorkerProcess(env, tmp_path / "worker.log")
        workers.append(w)
        return w.start()

    make.env = env  # what the next worker() starts with; a test may change it first
    yield make
    for w in workers:
        w.stop()
    log = tmp_path / "worker.log"
    if log.exists():
        print(log.read_text()[-4000:])


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def job_state(job):
    job.refresh_from_db()
    return job
