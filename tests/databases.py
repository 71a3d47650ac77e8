"""The test database: SQLite by default; a throwaway PostgreSQL cluster with MEMADMIN_TEST_DATABASE=postgres.

Loaded as a pytest plugin (``-p tests.databases`` in pyproject's addopts) because the cluster must be up and
DATABASE_URL set before pytest-django loads the settings, which happens before any conftest is imported.
The cluster lives in a temp dir on a free port (initdb, then ``postgres`` as a child of pytest) and is shut
down and removed when the session ends. initdb and postgres refuse to run as root: as root they run as the
``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from memadmin.memory.embedded import free_port  # stdlib only: safe before Django's settings are loaded

ENV = "MEMADMIN_TEST_DATABASE"
SHARED_URL = "MEMADMIN_TEST_POSTGRES_URL"  # set by the session that started the cluster, for its xdist workers
SUPERUSER = "memadmin"
DATABASE = "memadmin"
# Speed over durability (the cluster is thrown away), and enough connections for the worker-process tests.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "log_min_messages": "warning",
}


def postgres_bindir() -> Path:
    """Debian keeps the server binaries out of PATH, in /usr/lib/postgresql/<major>/bin (newest wins)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if debian:
        return Path(debian[-1]).parent
    raise pytest.UsageError(
        f"{ENV}=postgres needs the PostgreSQL server binaries (initdb, postgres): "
        "apt-get install postgresql (bin/test does this for you)."
    )


class ThrowawayPostgres:
    def __init__(self):
        self.bindir = postgres_bindir()
        self.directory = Path(tempfile.mkdtemp(prefix="memadmin-test-postgres-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.as_user: dict = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise pytest.UsageError(
                    "initdb refuses to run as root and there is no 'postgres' user to run it as: "
                    "apt-get install postgresql creates one (or run the tests as an ordinary user)."
                ) from None
            os.chown(self.directory, account.pw_uid, account.pw_gid)
            self.as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    @property
    def url(self) -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [str(self.bindir / command[0]), *command[1:]],
            cwd=self.directory,
            env=self._env(),
            capture_output=True,
            text=True,
            **self.as_user,
        )
        if result.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")

    def major(self) -> int:
        version = subprocess.run([str(self.bindir / "initdb"), "--version"], capture_output=True, text=True).stdout
        found = re.search(r"\(PostgreSQL\) (\d+)", version)  # "initdb (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        return int(found.group(1)) if found else 0

    def _env(self) -> dict:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": str(self.directory)}

    def start(self) -> ThrowawayPostgres:
        # ICU's en-US collation (PostgreSQL 15+), as a production cluster on an en_US.UTF-8 machine sorts: ids
        # must not depend on the byte order SQLite (and the C locale) happen to use.
        icu = ["--locale-provider=icu", "--icu-locale=en-US"] if self.major() >= 15 else []
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            *icu,
            "--no-sync",
        )
        options = [arg for name, value in SERVER_SETTINGS.items() for arg in ("-c", f"{name}={value}")]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(self.directory),
                    *options,
                ],
                cwd=self.directory,
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                **self.as_user,
            )
        self._wait_ready()
        self._createdb()
        return self

    def _connect(self, dbname: str):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=dbname, autocommit=True, connect_timeout=2
        )

    def _wait_ready(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self._connect("postgres").close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres not ready after {timeout}s:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def _createdb(self) -> None:
        with self._connect("postgres") as connection:
            connection.execute(f'CREATE DATABASE "{DATABASE}"')

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown: it does not wait for a connection someone left open.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for another process (the job worker) that must use this test database."""
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings_dict['NAME']}"
    credentials = quote(settings_dict["USER"] or "", safe="")
    if settings_dict.get("PASSWORD"):
        credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = settings_dict["HOST"] or "127.0.0.1"
    return f"postgres://{credentials}@{host}:{settings_dict['PORT'] or 5432}/{quote(settings_dict['NAME'], safe='')}"


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    choice = os.environ.get(ENV, "sqlite").strip().lower() or "sqlite"
    if choice == "sqlite":
        return
    if choice != "postgres":
        raise pytest.UsageError(f"{ENV} must be sqlite or postgres, not {choice!r}.")
    shared = os.environ.get(SHARED_URL)
    if shared and os.environ.get("PYTEST_XDIST_WORKER"):
        # An xdist worker uses the cluster its controller started (each worker gets its own database in it,
        # pytest-django's test_<name>_gw<N>): one initdb per run, not one per worker.
        os.environ["DATABASE_URL"] = shared
        return
    cluster = ThrowawayPostgres()
    early_config.add_cleanup(cluster.stop)
    atexit.register(cluster.stop)  # also when the session dies before pytest's own clean-up runs
    try:
        cluster.start()
    except RuntimeError as exc:
        cluster.stop()
        raise pytest.UsageError(f"Could not start the throwaway PostgreSQL: {exc}") from exc
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # A CI time-out sends SIGTERM, which would end pytest without its clean-up and leave the cluster behind.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    os.environ["DATABASE_URL"] = cluster.url  # the worker processes the job tests start inherit it
    os.environ[SHARED_URL] = cluster.url  # and so do pytest-xdist's workers (see above)
    early_config.stash[cluster_key] = cluster


def _exit_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # pytest stops the session as for Ctrl-C, and its clean-up runs


cluster_key = pytest.StashKey[ThrowawayPostgres]()


def pytest_report_header(config):
    cluster = config.stash.get(cluster_key, None)
    if cluster is not None:
        return [f"database: throwaway PostgreSQL on port {cluster.port} ({cluster.bindir})"]
    return ["database: SQLite"]
