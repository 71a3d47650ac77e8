"""Erasure receipts: every synchronous erasure writes exactly one, with the right counts and no memory text, and
each one is signed so that a third party can verify it offline."""

import base64
import json
import os
import re
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.utils import timezone

from memadmin.memory import receipts, services
from memadmin.memory.errors import NotFound, PermissionDenied
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.models import ErasureReceipt

ROOT = Path(__file__).resolve().parents[3]
SECRET = "the gate code is 4471"


@pytest.fixture
def acme(world):
    return world.admin(world.acme)


def _only_receipt() -> ErasureReceipt:
    assert ErasureReceipt.objects.count() == 1
    return ErasureReceipt.objects.get()


def _no_text(receipt: ErasureReceipt) -> None:
    document = json.dumps(receipts.receipt_document(receipt))
    assert SECRET not in document and "4471" not in document


def test_one_memory(world, acme, add):
    record = add(acme, "concierge_app", "alice", SECRET)
    add(acme, "concierge_app", "alice", "keeps this one")
    result = services.memory_delete(scope=acme, memory_id=record.id)
    receipt = _only_receipt()
    assert result.receipt_id == str(receipt.pk) and result.as_dict()["receipt_id"] == str(receipt.pk)
    assert (receipt.kind, receipt.user_id, receipt.actor) == ("memory", "alice", "acme-admin")
    assert receipt.per_app == {"concierge_app": {"memories": 1, "history_rows": 1, "messages": 0, "unindexed": 0}}
    assert receipt.verification["remaining"] == 0 and receipt.job_id is None
    assert receipt.purge_due_at - receipt.created_at == timedelta(seconds=900) and receipt.purged_at is None
    assert receipt.body["scope"]["filters"]["children"][0] == {"op": "eq", "field": "memory_id", "value": record.id}
    _no_text(receipt)


def test_a_batch_is_one_receipt(world, acme, add):
    apps = ["concierge_app", "sports_portal"] * 2
    ids = [(add(acme, app, "alice", f"{SECRET} {n}").id, app) for n, app in enumerate(apps)]
    result = services.memory_delete_batch(scope=acme, memory_ids=ids)
    receipt = _only_receipt()
    assert result.receipt_id == str(receipt.pk) and receipt.kind == "memories" and receipt.memories == 4
    assert {app: line["memories"] for app, line in receipt.per_app.items()} == {"concierge_app": 2, "sports_portal": 2}
    assert sorted(receipt.scope["filters"]["values"]) == sorted(i for i, _ in ids)
    _no_text(receipt)


@pytest.mark.parametrize(
    ("fields", "kind", "deleted"),
    [
        ({"user_id": "alice"}, "user", 3),
        ({"user_id": "alice", "run_id": "r1"}, "run", 1),
        ({"user_id": "alice", "agent_id": "bot"}, "agent", 1),
    ],
)
def test_a_person_a_run_an_agents_memories(world, acme, add, fields, kind, deleted):
    add(acme, "concierge_app", "alice", SECRET, run_id="r1")
    add(acme, "sports_portal", "alice", SECRET, agent_id="bot")
    add(acme, "sports_portal", "alice", "plain")
    add(acme, "sports_portal", "bob", "bob stays")
    result = services.memory_delete_matching(scope=acme, filters=filter_from_fields(**fields))
    receipt = _only_receipt()
    assert result.receipt_id == str(receipt.pk) and (receipt.kind, receipt.memories) == (kind, deleted)
    assert receipt.user_id == "alice" and receipt.verification["method"] == "index"
    assert set(receipt.verification["index_healthy"]) == set(receipt.per_app)
    assert receipt.body["totals"]["memories"] == deleted
    _no_text(receipt)


def test_an_end_users_own_delete_all(world, add):
    add(world.admin(world.acme), "concierge_app", "alice", SECRET)
    alice = world.end_user(world.acme, "alice")
    services.memory_delete_matching(scope=alice, filters=filter_from_fields(user_id="alice"))
    receipt = _only_receipt()
    assert (receipt.kind, receipt.actor, receipt.actor_kind, receipt.user_id) == (
        "own_data",
        "enduser:alice",
        "enduser",
        "alice",
    )
    assert receipts.receipt_get(scope=alice, receipt_id=receipt.pk) == receipt


def test_a_deletion_that_matched_nothing_leaves_no_receipt(world, acme):
    services.memory_delete_matching(scope=acme, filters=filter_from_fields(user_id="nobody"))
    assert ErasureReceipt.objects.count() == 0


def test_receipts_in_scope_only(world, acme, add):
    record = add(acme, "concierge_app", "alice", SECRET)
    receipt_id = services.memory_delete(scope=acme, memory_id=record.id).receipt_id
    assert receipts.receipt_get(scope=world.scope(world.acme_support), receipt_id=receipt_id).kind == "memory"
    for outsider in (
        world.admin(world.globex),
        world.end_user(world.acme, "bob"),
        world.api_key(world.acme, world.acme_sports),
    ):
        with pytest.raises(NotFound):
            receipts.receipt_get(scope=outsider, receipt_id=receipt_id)
    with pytest.raises(PermissionDenied):
        receipts.receipt_get(scope=world.scope(world.acme_viewer), receipt_id=receipt_id)
    with pytest.raises(NotFound):
        receipts.receipt_get(scope=acme, receipt_id="not-a-uuid")


# --- signing ----------------------------------------------------------------------------------------------


@pytest.fixture
def signed(world, acme, add):
    record = add(acme, "concierge_app", "alice", SECRET)
    services.memory_delete(scope=acme, memory_id=record.id)
    return receipts.receipt_document(_only_receipt())


def test_the_signature_verifies_and_one_changed_byte_does_not(signed):
    assert receipts.receipt_verify(signed)["kind"] == "memory"
    text = json.dumps(signed)
    position = text.index('"memories": 1') + len('"memories": ')
    tampered = json.loads(text[:position] + "0" + text[position + 1 :])
    with pytest.raises(receipts.ReceiptInvalid, match="does not match"):
        receipts.receipt_verify(tampered)
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(receipts.ReceiptInvalid, match="another key"):
        receipts.receipt_verify(signed, other)


def test_the_key_is_made_once_0600_in_the_data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    first = receipts.public_key_pem()
    path = tmp_path / receipts.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    receipts._keys.clear()  # noqa: SLF001 - a new process reads the same file
    assert receipts.public_key_pem() == first


def test_a_key_from_the_environment(settings, tmp_path):
    seed = os.urandom(32)
    settings.DATA_DIR, settings.MEMADMIN_RECEIPT_SIGNING_KEY = tmp_path, seed
    expected = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    assert receipts.key_id() == receipts.key_id(expected) and not (tmp_path / receipts.KEY_FILE).exists()


def test_a_bad_key_in_the_environment_stops_the_process(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from memadmin.env import env_ed25519_seed

    monkeypatch.setenv("MEMADMIN_RECEIPT_SIGNING_KEY", base64.b64encode(b"short").decode())
    with pytest.raises(ImproperlyConfigured, match="32 random bytes"):
        env_ed25519_seed("MEMADMIN_RECEIPT_SIGNING_KEY")


def test_marking_purged_signs_an_attestation(world, signed):
    receipt = ErasureReceipt.objects.get()
    later = receipt.created_at + timedelta(seconds=1)
    assert receipts.receipt_mark_purged(erased_before=receipt.created_at, purged_at=later) == 0
    assert receipts.receipt_mark_purged(erased_before=later, purged_at=later) == 1
    assert receipts.receipt_mark_purged(erased_before=later, purged_at=later) == 0  # once
    receipt.refresh_from_db()
    assert receipt.purged_at == later and receipt.body == signed["receipt"]
    document = receipts.receipt_document(receipt)
    assert receipts.receipt_verify(document)
    document["purge"]["attestation"]["purged_at"] = timezone.now().isoformat()
    with pytest.raises(receipts.ReceiptInvalid, match="purge attestation"):
        receipts.receipt_verify(document)


def test_verify_receipt_command(signed, tmp_path, capsys):
    good, bad, key = tmp_path / "good.json", tmp_path / "bad.json", tmp_path / "key.pem"
    good.write_text(json.dumps(signed))
    key.write_text(receipts.public_key_pem())
    call_command("verify_receipt", str(good), "--public-key", str(key))
    assert "valid" in capsys.readouterr().out
    raw = bytearray(good.read_bytes())
    raw[raw.index(b'"memories": 1') + len(b'"memories": ')] = ord("7")  # one byte
    bad.write_bytes(bytes(raw))
    with pytest.raises(CommandError, match="does not match"):
        call_command("verify_receipt", str(bad), "--public-key", str(key))
    bad.write_bytes(b"{not json")
    with pytest.raises(CommandError, match="not JSON"):
        call_command("verify_receipt", str(bad))


def test_the_documented_snippet_verifies_offline(signed, tmp_path):
    docs = (ROOT / "docs" / "receipts.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", docs, re.S).group(1)
    script, good, bad, key = (tmp_path / n for n in ("verify.py", "good.json", "bad.json", "key.pem"))
    script.write_text(snippet)
    key.write_text(receipts.public_key_pem())
    good.write_text(json.dumps(signed))
    bad.write_text(json.dumps(signed).replace('"memories": 1', '"memories": 2', 1))
    ok = subprocess.run([sys.executable, str(script), str(good), str(key)], capture_output=True, text=True)
    assert ok.returncode == 0 and "valid" in ok.stdout, ok.stderr
    failed = subprocess.run([sys.executable, str(script), str(bad), str(key)], capture_output=True, text=True)
    assert failed.returncode != 0 and "InvalidSignature" in failed.stderr
