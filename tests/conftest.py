"""Test harness: a throwaway Valkey with the search module, started once per session on a free port."""

import gc
import os
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from pathlib import Path

import pytest
import valkey
from django.conf import settings
from django.core.cache import cache
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper
from django.test import Client

from memadmin.celery import broker_follow_store
from memadmin.memory import index, store
from memadmin.memory.embedded import free_port, private_dir, server_args, start_process, wait_ready
from tests.support import cases
from tests.support.stores import store_kind  # noqa: F401 - a fixture: where a world keeps its apps

# A real local HTTP receiver for webhook tests (the ``receiver`` fixture).
pytest_plugins = ("tests.receiver",)
# A streamed export audits when its generator ends: read to the end, or closed by the garbage collector when a
# test left it unread (the test client's response is in a reference cycle). Left to chance, that audit row lands
# in whichever later test is running, with the first test's tenant id: on PostgreSQL, which never hands an id out
# twice, a foreign-key error in someone else's teardown. So a test that streamed collects before its own teardown.
_client_request = Client.request
_streamed: list[bool] = []


def _request_noting_streams(self, **request):
    response = _client_request(self, **request)
    if getattr(response, "streaming", False):
        _streamed.append(True)
    if cases.ENV in os.environ:
        cases.record({**self._base_environ(**request)}, response)
    return response


Client.request = _request_noting_streams

# "disk I/O error" is SQLite's name for a whole family of failures: a connection that fails to open says which
# one (SQLITE_IOERR_SHMOPEN, _LOCK, _SHORT_READ...), the file and what the process has open, so the harness
# error in docs/development.md can be told apart from the next one.
_sqlite_new_connection = SQLiteWrapper.get_new_connection


def _new_connection_naming_errors(self, conn_params):
    try:
        return _sqlite_new_connection(self, conn_params)
    except sqlite3.OperationalError as exc:
        detail = f"{getattr(exc, 'sqlite_errorname', '?')} on {conn_params.get('database')!r}"
        try:
            detail += f"; {len(os.listdir('/proc/self/fd'))} fds open, {len(open('/proc/self/maps').readlines())} maps"
        except OSError:
            pass
        raise sqlite3.OperationalError(f"{exc} ({detail})") from exc


SQLiteWrapper.get_new_connection = _new_connection_naming_errors


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    if _streamed:  # before the fixtures' teardown: the test's database transaction is still open
        _streamed.clear()
        gc.collect()


SHARED_MODELS = Path(tempfile.gettempdir()) / f"memadmin-test-models-{os.getuid()}"
SHARED_MODELS.mkdir(mode=0o700, exist_ok=True)
RESTART_TIMEOUT = 300  # seconds; met, the wait ends at once


class ThrowawayValkey:
    def __init__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="memadmin-test-valkey-"))
        self.port = free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"valkey://127.0.0.1:{self.port}"

    def start(self):
        if self.process is None:
            self.process = start_process(self.directory, self.port, detach=False)
            return self
        # A restart (the job tests stop and start the session's server) reloads the AOF the session has written
        # so far, 100 MB after the 30,000-memory job tests: on a loaded machine that takes longer than the 20 s
        # start_process allows, and the next tests then met a server still loading. Wait as long as it takes.
        private_dir(self.directory)
        self.process = subprocess.Popen(
            server_args(self.directory, self.port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            umask=0o077,
        )
        wait_ready(self.port, self.process, self.directory / "valkey.log", timeout=RESTART_TIMEOUT)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self) -> valkey.Valkey:
        return valkey.Valkey(port=self.port)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """The SQLite test DB is a file, not :memory:: the job tests run a real Celery worker process that
    must see the jobs the test created (tests/tenants/jobs, transaction=True)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3" and not db.get("TEST", {}).get("NAME"):
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("testdb") / "test.sqlite3")


@pytest.fixture(scope="session")
def valkey_server():
    server = ThrowawayValkey().start()
    data_dir = Path(tempfile.mkdtemp(prefix="memadmin-test-data-"))
    # The bundled model's ONNX file is made once per machine, not once per session and xdist worker (a torch
    # export, ~15 s of CPU each): every session's data dir points its models/ at one shared cache, whose lock
    # makes a second session wait for the first one's export.
    (data_dir / "models").symlink_to(SHARED_MODELS, target_is_directory=True)
    old = settings.VALKEY_URL, settings.DATA_DIR
    settings.VALKEY_URL, settings.DATA_DIR = server.url, data_dir
    store.reset()
    broker_follow_store()  # the queue too: a test module importing the tasks may have configured Celery already
    yield server
    store.reset()
    settings.VALKEY_URL, settings.DATA_DIR = old
    server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Tests make several accounts each; PBKDF2's deliberate slowness would dominate the suite."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def clean_store(request, valkey_server):
    """Every test starts from an empty store (indexes included) and empty Mem0 history tables."""
    valkey_server.client().flushall()
    index.forget_all()
    cache.clear()  # cached counts are keyed by tenant ids, which the rolled-back test DB hands out again
    # The history files outlive FLUSHALL; empty them rather than unlink them (Mem0 holds them open).
    for path in (Path(settings.DATA_DIR) / "history").glob("*.sqlite3"):
        with closing(sqlite3.connect(path, timeout=30)) as connection, connection:
            tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            for table in tables & {"history", "messages"}:
                connection.execute(f"DELETE FROM {table}")
    yield


@pytest.fixture
def doomed_server(valkey_server):
    """A second throwaway server the service is pointed at (kill it to test an outage); the session
    server is restored afterwards, whatever the test did."""
    server = ThrowawayValkey().start()
    old_url = settings.VALKEY_URL
    try:
        settings.VALKEY_URL = server.url
        store.reset()
        yield server
    finally:
        settings.VALKEY_URL = old_url
        store.reset()
        server.cleanup()


@pytest.fixture(scope="session")
def second_valkey_server(valkey_server):
    """A second embedded server for the tests of more than one store (MEMADMIN_STORES), started on first use."""
    server = ThrowawayValkey().start()
    yield server
    server.cleanup()


@pytest.fixture
def two_stores(second_valkey_server, settings):
    """The session server is the store "default", the second one the store "second"; emptied like the first."""
    second_valkey_server.client().flushall()
    settings.MEMADMIN_STORES = {"second": second_valkey_server.url}
    yield second_valkey_server
    index.forget_all()


@pytest.fixture
def raw_valkey(valkey_server) -> valkey.Valkey:
    """Direct access for assertions about what is really in Valkey (SCAN, HGETALL)."""
    return valkey_server.client()


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's, via Playwright), one per session: Playwright's sync API allows only one
    running instance per thread, and both tests/browser and tests/security drive it."""
    from playwright.sync_api import expect, sync_playwright

    from tests.support.browser import EXPECT_TIMEOUT_MS

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)  # every expect() waits for its condition up to this long
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("MEMADMIN_CHROMIUM", "/usr/bin/chromium"),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
