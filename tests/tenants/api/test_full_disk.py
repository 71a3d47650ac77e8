"""A store that refuses writes and a full disk: a 503 that names the cause, never a 500, and no write half-done
(the memory a 503 answered for is not stored, so a client's retry cannot duplicate it). /healthz says so too.

The disk is a real 2 MB tmpfs mounted for the test (the tests run as root in this project's CI)."""

import errno
import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import valkey

from memadmin.memory import index, store
from memadmin.memory.embedded import free_port, start_process


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory: Path) -> Path:
    """Write zeros until the disk says ENOSPC; the file is what to delete to free the space again."""
    path = directory / "filler"
    with open(path, "wb", buffering=0) as fh:
        with pytest.raises(OSError) as full:
            while True:
                fh.write(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC
    return path


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def add(api, text: str):
    return api.post("/v3/memories/add/", {"messages": text, "user_id": "u1"}, format="json")


def stored_texts(client: valkey.Valkey, collection: str) -> list[str]:
    keys = list(client.scan_iter(match=f"{store.key_prefix(collection)}*"))
    return sorted(client.hget(key, "memory").decode() for key in keys)


@pytest.fixture
def store_on_tiny_disk(tiny_disk, settings):
    """A Valkey whose AOF lives on the tiny disk; the service is pointed at it for the test."""
    server = start_process(tiny_disk / "valkey", free_port(), detach=False)
    port = int(server.args[server.args.index("--port") + 1])
    settings.VALKEY_URL = f"valkey://127.0.0.1:{port}"
    store.reset()
    index.forget_all()
    yield valkey.Valkey(port=port)
    server.kill()
    server.wait(10)
    store.reset()
    index.forget_all()


def test_valkey_refusing_writes_is_a_503_naming_the_cause_and_nothing_is_half_stored(
    world, api, client, store_on_tiny_disk
):
    raw = store_on_tiny_disk
    api.as_key(world.acme_key)
    assert add(api, "I like tea.").status_code == 200
    filler = fill(Path(raw.config_get("dir")["dir"]))
    raw.set("nudge", "x" * 65536)  # its AOF write fails: from then on Valkey answers every write MISCONF
    wait_for(lambda: raw.info("persistence")["aof_last_write_status"] == "err")

    response = add(api, "I like coffee.")
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["error"]["code"] == "store_refuses_writes" and body["error"]["cause"] == "persistence_failing"
    assert "cannot save to disk" in body["detail"] and "MISCONF" in body["detail"]
    health = client.get("/healthz")
    assert health.status_code == 200  # reads still work: the workers stay in rotation
    assert health.json()["status"] == "degraded"
    assert health.json()["store"]["writes"] == "refused: persistence failing"
    assert health.json()["store"]["persistence"]["aof_last_write_status"] == "err"
    # The redis-stack search module's FT.SEARCH counts as a write for MISCONF: searches are refused too, with
    # the same cause (valkey-search's is read-only).
    listed = api.post("/v3/memories/", {"filters": {"user_id": "u1"}}, format="json")
    assert listed.status_code == 503 and listed.json()["error"]["cause"] == "persistence_failing"
    # The dashboard says the same in words for people (no server text on the page).
    client.force_login(world.acme_support.user)
    page = client.get("/t/acme/memories/", {"user_id": "u1"})
    assert page.status_code == 503 and "refuses writes: it cannot save to disk" in page.content.decode()
    assert "MISCONF" not in page.content.decode() and "unreachable" not in page.content.decode()

    filler.unlink()
    wait_for(lambda: raw.info("persistence")["aof_last_write_status"] == "ok")
    assert add(api, "I like coffee.").status_code == 200  # the client's retry
    collection = world.acme_concierge.app_ref().collection
    assert stored_texts(raw, collection) == ["I like coffee.", "I like tea."]  # once each
    assert client.get("/healthz").json()["store"]["writes"] == "ok"


def test_a_full_disk_under_mem0s_history_is_a_503_and_the_memory_is_taken_back(
    world,
    api,
    client,
    raw_valkey,
    tiny_disk,
    settings,
    caplog,  # noqa: F811
):
    settings.DATA_DIR = tiny_disk
    collection = world.acme_concierge.app_ref().collection
    store.drop_memory(collection)  # its Mem0 handle writes history under the old data dir
    api.as_key(world.acme_key)
    try:
        assert add(api, "I like tea.").status_code == 200
        filler = fill(tiny_disk)
        response = add(api, "I like coffee, and a long sentence to need a new page. " * 40)
        assert response.status_code == 503, response.content
        body = response.json()
        assert body["error"]["code"] == "store_refuses_writes" and body["error"]["cause"] == "disk_full"
        assert "disk under the data dir is full" in body["detail"]
        # Mem0 had put the memory in Valkey before its history row failed: it was taken back.
        assert stored_texts(raw_valkey, collection) == ["I like tea."]
        assert "took back the 1 memories it had stored" in caplog.text
        health = client.get("/healthz").json()
        assert health["status"] == "degraded" and health["disk"]["low"] is True
        assert health["disk"]["free_bytes"] < 2 * 1024 * 1024

        filler.unlink()
        assert add(api, "I like coffee.").status_code == 200
        assert stored_texts(raw_valkey, collection) == ["I like coffee.", "I like tea."]
    finally:
        store.drop_memory(collection)  # close the history file before the disk goes


def test_the_django_database_full_is_a_503_not_a_500(rf):
    """A write of Django's own (a session, an audit row) that hits the full disk, anywhere in a request."""
    from django.db import OperationalError

    from memadmin.middleware import disk_full

    def view(request):
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as exc:
            raise OperationalError("database or disk is full") from exc

    handler = disk_full(view)
    request = rf.post("/t/acme/members/")
    try:
        view(request)
    except OperationalError as exc:
        response = handler.process_exception(request, exc)
    assert response.status_code == 503 and response["Retry-After"] == "60"
    assert json.loads(response.content)["error"]["cause"] == "disk_full"
    assert handler.process_exception(request, ValueError("something else")) is None  # a real bug stays a 500


def test_an_outage_logs_one_503_line_a_minute_not_one_per_request(monkeypatch):
    import logging

    from memadmin.middleware import Repeated503s

    def record(status):
        entry = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Service Unavailable: %s", ("/x",), None
        )
        entry.status_code = status
        return entry

    clock = [1000.0]
    monkeypatch.setattr("memadmin.middleware.time.monotonic", lambda: clock[0])
    quiet = Repeated503s()
    assert [quiet.filter(record(503)) for _ in range(500)].count(True) == 1
    assert quiet.filter(record(500))  # other errors are always logged
    clock[0] += 61
    later = record(503)
    assert quiet.filter(later) and "499 more 503 answers in the last minute were not logged" in later.getMessage()
    assert any(isinstance(f, Repeated503s) for f in logging.getLogger("django.request").filters)


def test_the_job_worker_waits_for_a_store_that_refuses_writes_instead_of_dying(
    transactional_db, store_on_tiny_disk, tmp_path, settings
):
    import os
    import sys

    from django.db import connection

    from tests.databases import database_url

    raw = store_on_tiny_disk
    filler = fill(Path(raw.config_get("dir")["dir"]))
    raw.set("nudge", "x" * 65536)
    wait_for(lambda: raw.info("persistence")["aof_last_write_status"] == "err")
    env = {
        **os.environ,
        "VALKEY_URL": settings.VALKEY_URL,
        "MEMADMIN_DATA_DIR": str(settings.DATA_DIR),
        "DATABASE_URL": database_url(connection.settings_dict),
    }
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--concurrency", "1", "--no-beat"],
        cwd=Path(__file__).resolve().parents[3],
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: "the job worker waits until it accepts writes again" in log.read_text(), 30)
        time.sleep(3)
        assert worker.poll() is None, log.read_text()  # alive, not "Unrecoverable error"
        filler.unlink()
        wait_for(lambda: "accepts writes again; starting the job worker" in log.read_text(), 30)
        wait_for(lambda: "ready." in log.read_text(), 30)
        assert worker.poll() is None
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)


def test_a_store_out_of_memory_or_read_only_is_a_503_naming_the_cause(world, api, client, doomed_server):
    raw = doomed_server.client()
    api.as_key(world.acme_key)
    assert add(api, "I like tea.").status_code == 200

    raw.config_set("maxmemory", "1")  # below what it uses: every write that may allocate is refused (noeviction)
    try:
        response = add(api, "I like coffee.")
        assert response.status_code == 503 and response.json()["error"]["cause"] == "out_of_memory", response.content
        assert "out of memory" in response.json()["detail"]
        assert client.get("/healthz").json()["store"]["writes"] == "refused: out of memory"
    finally:
        raw.config_set("maxmemory", "0")

    raw.replicaof("127.0.0.1", free_port())  # a replica of a primary that is not there: read-only
    try:
        response = add(api, "I like coffee.")
        assert response.status_code == 503 and response.json()["error"]["cause"] == "read_only", response.content
        health = client.get("/healthz").json()
        assert health["status"] == "degraded" and health["store"]["writes"] == "refused: read-only replica"
    finally:
        raw.replicaof("NO", "ONE")
    assert add(api, "I like coffee.").status_code == 200
    collection = world.acme_concierge.app_ref().collection
    assert stored_texts(raw, collection) == ["I like coffee.", "I like tea."]
