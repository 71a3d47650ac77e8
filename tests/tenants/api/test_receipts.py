"""Erasure receipts over the API: every deletion answer names its receipt (delete, delete_all, batch_delete, entity
delete), GET /v1/receipts/<id>/ returns it within the key's scope only, and the public key is public."""

# ruff: noqa: F811  (pytest fixtures imported by name are used as arguments)

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from memadmin.memory import receipts
from memadmin.memory.models import ErasureReceipt
from tests.support.jobs import job_files, load  # noqa: F401 - fixtures: flat indexes, the loader

MISSING = "00000000-0000-4000-8000-000000000000"


def _ids(raw_valkey, app, user_id: str) -> list[str]:
    return sorted(
        key.decode().rsplit(":", 1)[-1]
        for key in raw_valkey.scan_iter(match=f"mem0:{app.collection_name}:*")
        if raw_valkey.hget(key, "user_id") == user_id.encode()
    )


def _followed(api, answer, kind: str, memories: int) -> dict:
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["receipt_url"] == f"/v1/receipts/{body['receipt_id']}/"
    document = api.get(body["receipt_url"]).json()
    assert receipts.receipt_verify(document)["kind"] == kind
    assert document["receipt"]["totals"]["memories"] == memories and document["receipt"]["id"] == body["receipt_id"]
    assert "memory number" not in str(document)
    return document


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/v1/memories/?user_id=user-0", "user"),
        ("/v2/entities/user/user-0/", "user"),
        ("/v1/memories/?user_id=user-0&run_id=run-0", "run"),
    ],
)
def test_delete_all_and_entity_delete_answer_with_their_receipt(world, api, load, path, kind):
    load(world.acme_concierge, 40, users=2, runs=4)
    api.as_key(world.acme_key)
    _followed(api, api.delete(path), kind, 20 if kind == "user" else 10)
    assert ErasureReceipt.objects.count() == 1


def test_delete_one_and_a_batch(world, api, load, raw_valkey):
    load(world.acme_concierge, 10, users=2)
    load(world.acme_sports, 10, users=2, start=100)  # other ids than concierge_app's
    api.as_key(world.acme_key)
    one, *rest = _ids(raw_valkey, world.acme_concierge, "user-0")
    document = _followed(api, api.delete(f"/v1/memories/{one}/"), "memory", 1)
    assert document["receipt"]["per_app"]["concierge_app"]["history_rows"] == 1
    batch = rest + _ids(raw_valkey, world.acme_sports, "user-1")
    answer = api.delete("/v1/batch/", {"memories": [{"memory_id": i} for i in batch]}, format="json")
    document = _followed(api, answer, "memories", len(batch))
    assert set(document["receipt"]["per_app"]) == {"concierge_app", "sports_portal"}
    assert ErasureReceipt.objects.count() == 2


def test_a_receipt_outside_the_scope_is_404(world, api, load, raw_valkey):
    load(world.acme_concierge, 4, users=1)
    api.as_key(world.acme_key)
    url = api.delete("/v1/memories/?user_id=user-0").json()["receipt_url"]
    assert api.as_key(world.globex_key).get(url).status_code == 404
    restricted = world.make_key(world.acme, "sports-only", apps=[world.acme_sports])
    assert api.as_key(restricted).get(url).status_code == 404
    assert api.as_key(world.acme_key).get(f"/v1/receipts/{MISSING}/").status_code == 404
    assert api.as_key(world.acme_key).get("/v1/receipts/not-a-uuid/").status_code == 404
    api.credentials()
    assert api.get(url).status_code == 401


def test_the_public_key_is_public_and_verifies_receipts(world, api, load):
    load(world.acme_concierge, 4, users=1)
    answer = api.get("/v1/receipts/public-key/")
    assert answer.status_code == 200 and answer.json()["algorithm"] == "Ed25519"
    key = load_pem_public_key(answer.json()["public_key_pem"].encode())
    assert answer.json()["key_id"] == receipts.key_id(key)
    document = api.as_key(world.acme_key).get(api.delete("/v1/memories/?user_id=user-0").json()["receipt_url"]).json()
    assert receipts.receipt_verify(document, key)
