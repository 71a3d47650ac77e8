"""Test harness: a throwaway Valkey with the search module, started once per session on a free port."""

import shutil
import tempfile
from pathlib import Path

import pytest
import valkey
from django.conf import settings

from memadmin.memory import store
from memadmin.memory.embedded import free_port, start_process


class ThrowawayValkey:
    def __init__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="memadmin-test-valkey-"))
        self.port = free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"valkey://127.0.0.1:{self.port}"

    def start(self):
        self.process = start_process(self.directory, self.port, detach=False)
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
def valkey_server():
    server = ThrowawayValkey().start()
    data_dir = Path(tempfile.mkdtemp(prefix="memadmin-test-data-"))
    old = settings.VALKEY_URL, settings.DATA_DIR
    settings.VALKEY_URL, settings.DATA_DIR = server.url, data_dir
    store.reset()
    yield server
    store.reset()
    settings.VALKEY_URL, settings.DATA_DIR = old
    server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def clean_store(request, valkey_server):
    """Every test starts from an empty store (indexes included)."""
    valkey_server.client().flushall()
    store.forget_indexes()
    yield


@pytest.fixture
def raw_valkey(valkey_server) -> valkey.Valkey:
    """Direct access for assertions about what is really in Valkey (SCAN, HGETALL)."""
    return valkey_server.client()
