"""The disk purge of erased texts (memadmin/memory/purge.py): coalesced rewrites read back from INFO persistence,
the history files' free pages and WAL, a store that refuses, and purge_status for the receipts."""

import sqlite3
import time
import uuid
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import pytest
from django.conf import settings

from memadmin.memory import history_files, purge, store


def _rewrites(client) -> int:
    return int(client.info("persistence")["aof_rewrites"])


def _aof_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((directory / "appendonlydir").iterdir()))


# A complete purge stamps the receipts of the erasures it covered (a database write).
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def short_window(settings):
    settings.MEMADMIN_ERASURE_PURGE_SECONDS = 10
    settings.MEMADMIN_JOB_SWEEP_SECONDS = 60


def test_many_erasures_share_one_rewrite_read_back_from_info(valkey_server, raw_valkey):
    secret = f"erased-{uuid.uuid4().hex[:10]}".encode()
    raw_valkey.hset("mem0:purgetest:a", mapping={"memory": secret})
    raw_valkey.unlink("mem0:purgetest:a")
    # What the purge is for. Valkey may hold its AOF write back for up to 2 s while a background fsync runs (a
    # loaded machine): wait for the text to reach the file.
    deadline = time.monotonic() + 30
    while secret not in _aof_bytes(valkey_server.directory) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert secret in _aof_bytes(valkey_server.directory)
    before = _rewrites(raw_valkey)
    erased_at = []
    for _ in range(50):
        purge.erasure_mark(on="default")
        erased_at.append(datetime.now(timezone.utc))
    assert purge.purge_due()["ran"] is False  # not due yet: the window lets them gather
    assert purge.purge_status(erased_at=erased_at[-1])[1] is None

    report = purge.purge_due(force=True)

    assert report["ran"] and report["complete"], report
    assert _rewrites(raw_valkey) == before + 1  # fifty erasures, one rewrite
    line = report["stores"]["default"]
    assert line["state"] == "purged" and line["aof"] == "rewritten" and line["rdb"] == "no RDB snapshot"
    info = raw_valkey.info("persistence")
    assert info["aof_rewrite_in_progress"] == 0 and info["aof_last_bgrewrite_status"] == "ok"
    assert secret not in _aof_bytes(valkey_server.directory)
    assert purge.pending_stores() == {}
    finished = datetime.fromisoformat(report["finished_at"])
    for at in erased_at:
        due, purged = purge.purge_status(erased_at=at)
        assert purged == finished and (due - at).total_seconds() == 10
    assert purge.purge_due(force=False)["ran"] is False  # nothing pending: no second rewrite
    assert _rewrites(raw_valkey) == before + 1


def test_an_erasure_during_the_rewrite_stays_pending(raw_valkey):
    purge.erasure_mark(on="default")
    seconds, _ = raw_valkey.time()
    # The mark's clear compares the last erasure with the rewrite's cutoff: one after the cutoff survives.
    raw_valkey.hset(purge.PENDING_KEY, "last", f"{seconds + 5}.000000")
    line = purge.store_purge("default")
    assert line["state"] == "purged"
    pending = purge.pending_stores()["default"]
    assert pending["first"] == pytest.approx(float(line["cutoff"]))


def test_due_time_starts_the_purge_without_force(raw_valkey):
    purge.erasure_mark(on="default")
    assert purge.purge_due()["ran"] is False
    raw_valkey.hset(purge.PENDING_KEY, "first", f"{time.time() - 10:.6f}")  # the first erasure is 10 s old
    report = purge.purge_due()
    assert report["ran"] and report["complete"]


def test_a_store_that_refuses_the_rewrite_is_said_and_never_reported_purged(two_stores, settings):
    server = two_stores
    admin = server.client()
    admin.execute_command(
        "ACL", "SETUSER", "limited", "on", "nopass", "~*", "&*", "+@all", "-bgrewriteaof", "-bgsave", "-config"
    )
    try:
        settings.MEMADMIN_STORES = {"second": f"valkey://limited:x@127.0.0.1:{server.port}"}
        store.reset()
        purge.erasure_mark(on="second")
        erased_at = datetime.now(timezone.utc)
        report = purge.purge_due(force=True)
        line = report["stores"]["second"]
        assert line["state"].startswith("not purged: BGREWRITEAOF refused")
        assert report["complete"] is False
        assert purge.purge_status(erased_at=erased_at)[1] is None
        assert "second" not in purge.pending_stores()  # said once, not retried every pass
    finally:
        admin.execute_command("ACL", "DELUSER", "limited")
        store.reset()


def test_a_store_that_keeps_rdb_snapshots_gets_a_fresh_one(two_stores):
    server = two_stores
    raw = server.client()
    secret = f"rdbsecret-{uuid.uuid4().hex[:8]}".encode()  # short: never LZF-compressed in the snapshot
    raw.config_set("save", "3600 1")
    try:
        raw.hset("mem0:rdbtest:a", mapping={"memory": secret})
        raw.save()
        dump = server.directory / "dump.rdb"
        assert secret in dump.read_bytes()
        raw.unlink("mem0:rdbtest:a")
        purge.erasure_mark(on="second")
        before = int(raw.info("persistence")["rdb_saves"])

        line = purge.purge_due(force=True)["stores"]["second"]

        assert line["state"] == "purged" and line["rdb"] == "RDB snapshot rewritten"
        info = raw.info("persistence")
        assert int(info["rdb_saves"]) == before + 1 and info["rdb_last_bgsave_status"] == "ok"
        assert secret not in dump.read_bytes()
    finally:
        raw.config_set("save", "")
        (server.directory / "dump.rdb").unlink(missing_ok=True)


def _history_file(name: str) -> Path:
    path = Path(settings.DATA_DIR) / "history" / f"{name}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_history_rows_deleted_without_secure_delete_leave_the_file_after_the_purge(valkey_server):
    path = _history_file(f"purge_{uuid.uuid4().hex[:8]}")
    secret, kept = f"histsecret-{uuid.uuid4().hex}", f"histkept-{uuid.uuid4().hex}"
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE history (id TEXT PRIMARY KEY, memory_id TEXT, old_memory TEXT, new_memory TEXT)"
        )
        connection.execute("INSERT INTO history VALUES ('1', 'm1', NULL, ?)", (secret * 40,))
        connection.execute("INSERT INTO history VALUES ('2', 'm2', NULL, ?)", (kept,))
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("PRAGMA secure_delete=OFF")  # as before this version: the text stays in free space
        connection.execute("DELETE FROM history WHERE id='1'")
    files = [path, path.with_name(path.name + "-wal")]
    assert any(secret.encode() in f.read_bytes() for f in files if f.exists())

    result = history_files.history_file_purge(path)

    assert result["vacuumed"] and result["checkpointed"]
    on_disk = b"".join(f.read_bytes() for f in path.parent.glob(path.name + "*"))
    assert secret.encode() not in on_disk and kept.encode() in on_disk
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert history_files.history_file_purge(path)["vacuumed"] is False  # once per file: later deletions are zeroed


def test_connections_memadmin_opens_delete_securely(valkey_server):
    from memadmin.memory.history import history_delete

    collection = f"purge_{uuid.uuid4().hex[:8]}"
    path = _history_file(collection)
    secret = f"securedel-{uuid.uuid4().hex}"
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "CREATE TABLE history (id TEXT PRIMARY KEY, memory_id TEXT, old_memory TEXT, new_memory TEXT)"
        )
        connection.execute("INSERT INTO history VALUES ('1', 'm1', NULL, ?)", (secret,))
    assert history_delete(store.Place(store.DEFAULT, collection), ["m1"]) == 1
    assert secret.encode() not in path.read_bytes()  # rollback journal: the file itself was overwritten
    assert purge.pending_stores()  # and the erasure was marked for the AOF


def test_purge_status_needs_an_aware_time():
    with pytest.raises(ValueError):
        purge.purge_status(erased_at=datetime.now())


def test_one_purge_at_a_time_and_the_lock_expires_on_its_own(raw_valkey):
    purge.erasure_mark(on="default")
    raw_valkey.set(purge.LOCK_KEY, "another worker", ex=purge.LOCK_SECONDS)
    busy = purge.purge_due(force=True)
    assert busy["ran"] is False and busy["busy"] == "another purge is running"
    assert purge.pending_stores()  # nothing was taken
    assert 0 < raw_valkey.ttl(purge.LOCK_KEY) <= purge.LOCK_SECONDS  # a killed worker blocks a minute at most
    raw_valkey.delete(purge.LOCK_KEY)
    assert purge.purge_due(force=True)["complete"] is True
    assert not raw_valkey.exists(purge.LOCK_KEY) and purge.pending_stores() == {}


def test_a_store_that_cannot_be_asked_keeps_the_run_incomplete(valkey_server, settings):
    from memadmin.memory.embedded import free_port

    settings.MEMADMIN_STORES = {"gone": f"valkey://127.0.0.1:{free_port()}"}  # nothing listens there
    store.reset()
    try:
        purge.erasure_mark(on="default")
        erased_at = datetime.now(timezone.utc)
        report = purge.purge_due(force=True)
        assert report["stores"]["default"]["state"] == "purged"
        assert report["stores"]["gone"]["state"].startswith("failed: unreachable") and report["complete"] is False
        assert purge.pending_stores() == {"gone": {}}
        assert purge.purge_status(erased_at=erased_at)[1] is None  # it may hold marks nobody could read
    finally:
        store.reset()


def test_a_complete_purge_stamps_the_receipts_of_earlier_erasures_with_a_signed_attestation(valkey_server, db):
    """The receipt says "purged from disk at T" only after a purge that covered it completed, and the attestation
    verifies with the installation's key (one changed byte does not); a receipt made after the run began waits."""
    from memadmin.memory.receipts import ReceiptInvalid, receipt_document, receipt_record, receipt_verify
    from tenants.models import Tenant

    tenant = Tenant.objects.create(name="Purged", slug="purged")
    before = receipt_record(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        kind="user",
        actor="someone",
        actor_kind="staff",
        role="support",
        per_app={"app": {"memories": 1}},
        verification={"remaining": 0},
        user_id="alice",
    )
    assert before.purged_at is None and before.purge_due_at is not None
    purge.erasure_mark(on="default")
    report = purge.purge_due(force=True)
    assert report["complete"] and report["receipts_purged"] >= 1, report
    later = receipt_record(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        kind="user",
        actor="someone",
        actor_kind="staff",
        role="support",
        per_app={"app": {"memories": 1}},
        verification={"remaining": 0},
        user_id="bob",
    )
    before.refresh_from_db()
    assert before.purged_at == datetime.fromisoformat(report["finished_at"])
    document = receipt_document(before)
    assert document["purge"]["attestation"]["receipt_id"] == str(before.pk)
    receipt_verify(document)  # the body and the purge attestation both verify
    tampered = {
        **document,
        "purge": {
            **document["purge"],
            "attestation": {**document["purge"]["attestation"], "purged_at": "2000-01-01T00:00:00+00:00"},
        },
    }
    with pytest.raises(ReceiptInvalid, match="purge attestation's signature does not match"):
        receipt_verify(tampered)
    later.refresh_from_db()
    assert later.purged_at is None  # made after the run began: the next purge covers it
