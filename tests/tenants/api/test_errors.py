"""Status codes and the one error shape: 400 / 405 / 409 / 410 / 429 / 503."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from memadmin.memory import store
from memadmin.memory.embedded import free_port
from memadmin.memory.models import LegalHold
from tenants.models import App, TenantAPIKey

ROUTES = {
    "/v1/ping/": {"get"},
    "/v3/memories/add/": {"post"},
    "/v3/memories/": {"post"},
    "/v3/memories/search/": {"post"},
    "/v1/memories/": {"delete"},
    "/v1/memories/some-id/": {"get", "put", "delete"},
    "/v1/memories/some-id/history/": {"get"},
    "/v1/entities/": {"get"},
    "/v2/entities/user/u1/": {"delete"},
    "/v1/batch/": {"put", "delete"},
    "/v1/exports/": {"post"},
    "/v1/exports/get/": {"post"},
    "/api/v1/data-links/": {"post"},
}


def _error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"] == body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body


def test_wrong_methods_are_405(world, api):
    api.as_key(world.acme_key)
    for url, allowed in ROUTES.items():
        for method in {"get", "post", "put", "delete", "patch"} - allowed:
            _error(getattr(api, method)(url, {}, format="json"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "filters, message",
    [
        ({"colour": "red"}, "Unsupported filter field or operator: colour"),
        ({"user_id": {"contains": "a"}}, "Unsupported operator(s) for user_id: contains"),
        ({"created_at": {"after": "2024-01-01"}}, "Unsupported operator(s) for created_at: after"),
        ({"created_at": {"gte": "yesterday"}}, "created_at.gte must be a date"),
        ({"AND": {"user_id": "a"}}, "AND needs a non-empty list"),
        ({"user_id": {"in": []}}, "user_id.in must be a list of 1 to 100 ids"),
        ({"user_id": "has space"}, "user_id cannot contain whitespace"),
        ("user_id=alice", "filters must be a JSON object"),
        ({}, "there is no global bucket"),
        (None, "filters: This field may not be null"),
    ],
)
def test_bad_filters_are_400_naming_the_problem(world, api, filters, message):
    api.as_key(world.acme_key)
    for url, extra in (("/v3/memories/", {}), ("/v3/memories/search/", {"query": "q"})):
        body = _error(api.post(url, {"filters": filters, **extra}, format="json"), 400, "validation_error")
        assert message in body["detail"]


def test_bad_bodies_are_400(world, api):
    api.as_key(world.acme_key)
    post = lambda url, data: api.post(url, data, format="json")  # noqa: E731
    assert "there is no global bucket" in _error(post("/v3/memories/add/", {"messages": "x"}), 400)["detail"]
    body = _error(post("/v3/memories/add/", {"messages": "x", "run_id": "r1"}), 400)
    assert "every memory belongs to one end user" in body["detail"] and body["error"]["field"] == "user_id"
    assert "messages" in _error(post("/v3/memories/add/", {"user_id": "u1"}), 400)["error"]["field"]
    body = _error(post("/v3/memories/add/", {"messages": [{"role": "robot", "content": "x"}], "user_id": "u1"}), 400)
    assert "role" in body["detail"]
    body = _error(post("/v3/memories/add/", {"messages": "x", "user_id": "u1", "metadata": {"user_id": "u2"}}), 400)
    assert "reserved keys: user_id" in body["detail"]
    body = _error(post("/v3/memories/add/", {"messages": "x", "user_id": "u1", "expiration_date": "2030-01-01"}), 400)
    assert body["detail"].startswith("expiration_date: not supported by memadmin: ")
    body = _error(post("/v3/memories/add/", {"messages": "x", "user_id": "u1", "filters": {"user_id": "u2"}}), 400)
    assert "differs" in body["detail"]
    assert "query" in _error(post("/v3/memories/search/", {"filters": {"user_id": "u1"}}), 400)["detail"]
    _error(post("/v3/memories/search/", {"query": "q", "filters": {"user_id": "u1"}, "top_k": 0}), 400)
    _error(api.post("/v3/memories/?page_size=1000", {"filters": {"user_id": "u1"}}, format="json"), 400)
    _error(api.post("/v3/memories/?page=abc", {"filters": {"user_id": "u1"}}, format="json"), 400)
    _error(api.post("/v3/memories/", "[1, 2]", content_type="application/json"), 400, "validation_error")
    _error(api.put("/v1/batch/", {"memories": []}, format="json"), 400)
    _error(api.put("/v1/memories/x/", {}, format="json"), 400)
    _error(api.delete("/v2/entities/tenant/acme/"), 400)
    _error(post("/v1/exports/get/", {}), 400)


def test_unparseable_json_is_400(world, api):
    api.as_key(world.acme_key)
    _error(api.post("/v3/memories/", "{nope", content_type="application/json"), 400, "parse_error")
    _error(api.post("/v3/memories/", "user_id=a", content_type="application/x-www-form-urlencoded"), 415)


@pytest.mark.parametrize("query", ["", "?user_id=*", "?user_id=", "?filters=%7B%22user_id%22%3A%20%22*%22%7D"])
def test_delete_all_needs_an_exact_id(world, api, query):
    body = _error(api.as_key(world.acme_key).delete(f"/v1/memories/{query}"), 400, "validation_error")
    assert "delete_all needs an exact" in body["detail"] or "reserved" in body["detail"]


def test_delete_all_accepts_the_clients_filters_encoding(world, api):
    """DeleteAllMemoryOptions(filters=...) reaches us as the Python repr of a dict; JSON works too."""
    api.as_key(world.acme_key)
    api.post("/v3/memories/add/", {"messages": "x", "user_id": "u1"}, format="json")
    response = api.delete("/v1/memories/", QUERY_STRING="filters={'AND': [{'user_id': 'u1'}]}")
    assert response.status_code == 200 and response.json()["deleted"] == 1
    response = api.delete('/v1/memories/?filters={"user_id": "u2"}')
    assert response.status_code == 200 and response.json()["deleted"] == 0
    _error(api.delete("/v1/memories/?filters=__import__('os')"), 400)


def test_frozen_app_is_409_and_offboarded_410(world, api):
    api.as_key(world.acme_key)
    added = api.post(
        "/v3/memories/add/", {"messages": "x", "user_id": "u1", "app_id": "sports_portal"}, format="json"
    ).json()
    memory_id = added["results"][0]["id"]
    App.objects.filter(pk=world.acme_sports.pk).update(status=App.Status.FROZEN)
    body = _error(
        api.post("/v3/memories/add/", {"messages": "y", "user_id": "u1", "app_id": "sports_portal"}, format="json"),
        409,
        "conflict",
    )
    assert "frozen" in body["detail"]
    _error(api.put(f"/v1/memories/{memory_id}/", {"text": "z"}, format="json"), 409)
    _error(api.put("/v1/batch/", {"memories": [{"memory_id": memory_id, "text": "z"}]}, format="json"), 409)
    assert api.get(f"/v1/memories/{memory_id}/").status_code == 200  # reads still work

    App.objects.filter(pk=world.acme_sports.pk).update(status=App.Status.OFFBOARDED)
    body = _error(
        api.post("/v3/memories/add/", {"messages": "y", "user_id": "u1", "app_id": "sports_portal"}, format="json"),
        410,
        "gone",
    )
    assert "offboarded" in body["detail"]
    _error(api.post("/v3/memories/", {"filters": {"app_id": "sports_portal"}}, format="json"), 410)
    _error(api.delete("/v1/memories/?user_id=u1&app_id=sports_portal"), 410)
    assert api.get(f"/v1/memories/{memory_id}/").status_code == 404


def test_default_app_rules(world, api):
    api.as_key(world.acme_key)
    App.objects.filter(tenant=world.acme).update(is_default=False)
    body = _error(api.post("/v3/memories/add/", {"messages": "x", "user_id": "u1"}, format="json"), 400)
    assert "several apps and none is the default" in body["detail"]
    # A tenant with no app yet gets a "default" app on its first write.
    world.globex.apps.all().delete()
    added = api.as_key(world.globex_key).post("/v3/memories/add/", {"messages": "x", "user_id": "u1"}, format="json")
    assert added.json()["results"][0]["app_id"] == "default"
    assert App.objects.get(tenant=world.globex, app_id="default").is_default


def test_rate_limit_is_per_key_with_retry_after(world, api, settings):
    settings.MEMADMIN_API_RATE = (3, 60)
    api.as_key(world.acme_key)
    for _ in range(3):
        assert api.get("/v1/ping/").status_code == 200
    response = api.get("/v1/ping/")
    body = _error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60 and "Rate limit exceeded" in body["detail"]
    assert api.as_key(world.globex_key).get("/v1/ping/").status_code == 200  # another key, another budget
    settings.MEMADMIN_API_RATE = None
    assert api.as_key(world.acme_key).get("/v1/ping/").status_code == 200


def test_rate_setting_is_parsed_strictly(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from memadmin.env import env_rate

    for good, parsed in (("600/min", (600, 60)), ("10/s", (10, 1)), ("5000/h", (5000, 3600)), ("off", None)):
        monkeypatch.setenv("MEMADMIN_API_RATE", good)
        assert env_rate("MEMADMIN_API_RATE", "600/min") == parsed
    for bad in ("600", "600/fortnight", "-1/min", "lots/min", "600/"):
        monkeypatch.setenv("MEMADMIN_API_RATE", bad)
        with pytest.raises(ImproperlyConfigured, match="MEMADMIN_API_RATE"):
            env_rate("MEMADMIN_API_RATE", "600/min")


def test_store_unreachable_is_503(world, api, settings):
    api.as_key(world.acme_key)
    settings.VALKEY_URL = f"valkey://127.0.0.1:{free_port()}"
    store.reset()
    try:
        body = _error(api.post("/v3/memories/", {"filters": {"user_id": "u1"}}, format="json"), 503)
        assert body["error"]["code"] == "store_unavailable" and "unreachable" in body["detail"]
        _error(api.post("/v1/exports/get/", {"filters": {"user_id": "u1"}}, format="json"), 503)
    finally:
        store.reset()


def test_createapikey_prints_the_key_once(world, capsys):
    call_command("createapikey", "acme", "--name", "crm", "--app", "sports_portal")
    key = capsys.readouterr().out.strip()
    row = TenantAPIKey.objects.get_from_key(key)
    assert row.tenant == world.acme and row.name == "crm"
    assert list(row.apps.values_list("app_id", flat=True)) == ["sports_portal"]
    assert key not in row.hashed_key
    with pytest.raises(CommandError, match="No tenant"):
        call_command("createapikey", "initech", "--name", "x")
    with pytest.raises(CommandError, match="no active app nope"):
        call_command("createapikey", "acme", "--name", "x", "--app", "nope")


def test_schema_and_docs_are_served(db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/v1/ping/", "/v3/memories/add/", "/v1/batch/", "/v1/exports/get/"} <= set(paths)
    assert "requestBody" in paths["/v1/batch/"]["delete"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower() and b"cdn.jsdelivr" not in docs.content
    assert client.get("/api/redoc/").status_code == 200


@pytest.mark.parametrize("user_id", ["_", "__", "-", "a_b"])
def test_punctuation_only_ids_work(world, api, user_id):
    """Found by the fuzzer: a TAG value of only "_" was a query syntax error (500)."""
    api.as_key(world.acme_key)
    added = api.post("/v3/memories/add/", {"messages": "x", "user_id": user_id}, format="json")
    assert added.status_code == 200
    listed = api.post("/v3/memories/", {"filters": {"user_id": user_id}}, format="json").json()
    assert [m["user_id"] for m in listed["results"]] == [user_id]
    deleted = api.delete(f"/v2/entities/user/{user_id}/")
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 1


def test_legal_hold_blocks_api_deletions_with_409(world, api):
    api.as_key(world.acme_key)
    memory_id = api.post("/v3/memories/add/", {"messages": "x", "user_id": "u1"}, format="json").json()["results"][0][
        "id"
    ]
    LegalHold.objects.create(tenant=world.acme, reason="audit", created_by="legal")  # the whole tenant
    for response in (
        api.delete("/v1/memories/?user_id=u1"),
        api.delete(f"/v1/memories/{memory_id}/"),
        api.delete("/v1/batch/", {"memories": [{"memory_id": memory_id}]}, format="json"),
        api.delete("/v2/entities/user/u1/"),
    ):
        body = _error(response, 409, "conflict")
        assert "legal hold" in body["detail"] and body["error"]["status"] == "legal_hold"
    assert api.get(f"/v1/memories/{memory_id}/").status_code == 200


def test_search_top_k_up_to_1000_and_mem0s_default_threshold(world, api):
    """top_k is bounded where the Mem0 Platform bounds it (1000), and the default threshold is Mem0's 0.1: a match
    scoring under it is not returned unless the caller asks for threshold=0."""
    api.as_key(world.acme_key)
    api.post("/v3/memories/add/", {"messages": "I keep bees on the roof.", "user_id": "u1"}, format="json")
    post = lambda body: api.post("/v3/memories/search/", body, format="json")  # noqa: E731
    assert post({"query": "q", "filters": {"user_id": "u1"}, "top_k": 1000}).status_code == 200
    _error(post({"query": "q", "filters": {"user_id": "u1"}, "top_k": 1001}), 400)
    unrelated = "quarterly tax filing deadlines for corporations"
    everything = post({"query": unrelated, "filters": {"user_id": "u1"}, "threshold": 0}).json()["results"]
    assert len(everything) == 1 and everything[0]["score"] < 0.1  # the one memory, scoring as noise
    assert post({"query": unrelated, "filters": {"user_id": "u1"}}).json()["results"] == []
