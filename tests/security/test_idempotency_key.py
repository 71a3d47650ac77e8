"""Idempotency-Key on an add (tenants/api/idempotency.py): a retry answers the first answer and writes nothing; the
key cannot be reused for another body, is kept per API key, and hostile keys are a 400."""

import pytest
from rest_framework.test import APIClient

from memadmin.memory import selectors, services
from memadmin.memory.filters import filter_from_fields
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_membership
from tests.factories import two_tenant_world
from tests.support.hostile import assert_json_error


@pytest.fixture
def world(db):
    w = two_tenant_world()
    w.scope = scope_for_membership(w.acme_admin)

    def client(name="crm"):
        _row, key = TenantAPIKey.objects.create_key(name=name, tenant=w.acme)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return api

    w.client = client
    return w


def _add(api, key, text="Alice likes tea", **extra):
    body = {"messages": text, "user_id": "alice", "infer": False, **extra}
    return api.post("/v3/memories/add/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _count(world) -> int:
    return selectors.memory_count(scope=world.scope, filters=filter_from_fields(user_id="alice"))


def test_a_retry_answers_the_first_answer_without_writing_again(world):
    api = world.client()
    first = _add(api, "retry-1")
    assert first.status_code == 200 and "Idempotent-Replayed" not in first
    again = _add(api, "retry-1")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert _count(world) == 1
    assert _add(api, "retry-2").status_code == 200 and _count(world) == 2  # a new key is a new add
    assert api.post("/v3/memories/add/", {"messages": "no key", "user_id": "alice"}, format="json").status_code == 200
    assert _count(world) == 3


def test_the_same_key_with_another_body_is_refused(world):
    api = world.client()
    assert _add(api, "k").status_code == 200
    refused = _add(api, "k", text="Alice likes coffee")
    body = assert_json_error(refused, 422)
    assert body["error"]["code"] == "idempotency_key_reused" and "another body" in body["detail"]
    assert _count(world) == 1


def test_keys_belong_to_one_api_key(world):
    assert _add(world.client("one"), "shared").status_code == 200
    assert _add(world.client("two"), "shared").status_code == 200
    assert _count(world) == 2


def test_a_refused_first_request_is_not_kept(world):
    api = world.client()
    assert_json_error(api.post("/v3/memories/add/", {"user_id": "alice"}, format="json", HTTP_IDEMPOTENCY_KEY="f"), 400)
    assert _add(api, "f").status_code == 200 and _count(world) == 1


def test_a_replay_of_a_deleted_memory_says_so(world):
    api = world.client()
    first = _add(api, "gone")
    services.memory_delete(scope=world.scope, memory_id=first.json()["results"][0]["id"])
    body = assert_json_error(_add(api, "gone"), 409)
    assert "since been deleted" in body["detail"] and _count(world) == 0


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "caf\u00e9", "a\x00b", "a\u202eb"])
def test_hostile_keys_are_a_400(world, key):
    api = world.client()
    response = api.post(
        "/v3/memories/add/", {"messages": "x", "user_id": "alice"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert "Idempotency-Key" in assert_json_error(response, 400)["detail"]
    assert _count(world) == 0
