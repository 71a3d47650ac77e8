"""Untrusted input is bounded and valid before it is used: 400 in the API's error shape, never a 500,
and nothing stored when a request is refused: ids, text, JSON bodies, filters, batches."""

import json

import pytest

from memadmin.memory import selectors
from memadmin.memory.errors import ValidationError
from memadmin.memory.filters import MAX_FILTER_DEPTH, MAX_FILTER_TERMS, filter_from_fields, filter_from_mem0
from memadmin.memory.ids import clean_app_id, clean_id
from tenants.scoping import scope_for_membership
from tests.support.hostile import api_client, assert_json_error, send

SURROGATE = "\udfff"


def _count(world, slug="acme", user_id="mallory"):
    scope = scope_for_membership(getattr(world, f"{slug}_admin"))
    return selectors.memory_list(scope=scope, filters=filter_from_fields(user_id=user_id)).total


def _raw_json(payload: str) -> bytes:
    """JSON text as a hostile client writes it: json.dumps escapes a lone surrogate as \\udfff."""
    return payload.encode()


# --- item 4: text that is not valid Unicode --------------------------------------------------

SURROGATE_BODIES = [
    pytest.param({"messages": SURROGATE, "user_id": "mallory"}, id="text"),
    pytest.param({"messages": [{"role": "user", "content": f"hi {SURROGATE}"}], "user_id": "mallory"}, id="content"),
    pytest.param({"messages": "hi", "user_id": "mallory", "metadata": {"k": SURROGATE}}, id="metadata-value"),
    pytest.param({"messages": "hi", "user_id": "mallory", "metadata": {SURROGATE: 1}}, id="metadata-key"),
    pytest.param(
        {"messages": "hi", "user_id": "mallory", "metadata": {"a": [{"b": {"c": SURROGATE}}]}}, id="metadata-nested"
    ),
    pytest.param({"messages": "hi", "user_id": f"mallory{SURROGATE}"}, id="user_id"),
    pytest.param({"messages": "hi", "user_id": "mallory", "agent_id": SURROGATE}, id="agent_id"),
    pytest.param(
        {"messages": [{"role": "user", "content": "hi", "name": SURROGATE}], "user_id": "mallory"}, id="message-name"
    ),
]


@pytest.mark.parametrize("body", SURROGATE_BODIES)
def test_lone_surrogates_in_an_add_are_400_and_nothing_is_stored(hostile_world, body):
    client = api_client(hostile_world.keys["acme"].full)
    response = send(client, "post", "/v3/memories/add/", raw=json.dumps(body))
    assert "Unicode" in assert_json_error(response, 400)["detail"]
    assert _count(hostile_world) == 0


@pytest.mark.parametrize(
    "url, body",
    [
        ("/v3/memories/", {"filters": {"user_id": SURROGATE}}),
        ("/v3/memories/search/", {"query": f"tea {SURROGATE}", "filters": {"user_id": "alice"}}),
        ("/v1/exports/get/", {"filters": {"user_id": SURROGATE}}),
    ],
)
def test_lone_surrogates_in_reads_are_400(hostile_world, url, body):
    client = api_client(hostile_world.keys["acme"].full)
    assert_json_error(send(client, "post", url, raw=json.dumps(body)), 400)


def test_a_surrogate_in_an_update_changes_nothing(hostile_world):
    memory = hostile_world.memories["acme"][0]
    client = api_client(hostile_world.keys["acme"].full)
    before = json.loads(send(client, "get", f"/v1/memories/{memory.id}/").content)
    body = json.dumps({"text": f"changed {SURROGATE}"})
    assert_json_error(send(client, "put", f"/v1/memories/{memory.id}/", raw=body), 400)
    body = json.dumps({"memories": [{"memory_id": memory.id, "metadata": {"x": SURROGATE}}]})
    assert_json_error(send(client, "put", "/v1/batch/", raw=body), 400)
    assert json.loads(send(client, "get", f"/v1/memories/{memory.id}/").content) == before


def test_clean_id_rejects_surrogates_and_the_service_too():
    with pytest.raises(ValidationError):
        clean_id(f"a{SURROGATE}", "user_id")


# --- item 7: hostile JSON -----------------------------------------------------------------------


@pytest.mark.parametrize("depth", [100, 2_000, 50_000])
def test_deeply_nested_json_is_400(hostile_world, depth):
    client = api_client(hostile_world.keys["acme"].full)
    raw = '{"messages": "hi", "user_id": "mallory", "metadata": {"k": ' + "[" * depth + "]" * depth + "}}"
    body = assert_json_error(send(client, "post", "/v3/memories/add/", raw=raw), 400)
    assert "nested" in body["detail"]
    assert _count(hostile_world) == 0


def test_metadata_nested_900_deep_is_400(hostile_world):
    client = api_client(hostile_world.keys["acme"].full)
    metadata = inner = {}
    for _ in range(900):
        inner["k"] = {}
        inner = inner["k"]
    response = send(
        client,
        "post",
        "/v3/memories/add/",
        raw=json.dumps({"messages": "hi", "user_id": "mallory", "metadata": metadata}),
    )
    assert "nested" in assert_json_error(response, 400)["detail"]
    assert _count(hostile_world) == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_400(hostile_world, number):
    client = api_client(hostile_world.keys["acme"].full)
    raw = '{"filters": {"AND": [{"user_id": "alice"}, {"created_at": {"gte": NUMBER}}]}}'.replace("NUMBER", number)
    assert_json_error(send(client, "post", "/v3/memories/", raw=raw), 400)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400, -(10**400)])
def test_filter_timestamps_must_be_finite_and_in_range(value):
    with pytest.raises(ValidationError):
        filter_from_mem0({"created_at": {"gte": value}})


def test_malformed_json_and_wrong_types_are_400(hostile_world):
    client = api_client(hostile_world.keys["acme"].full)
    assert_json_error(send(client, "post", "/v3/memories/add/", raw="{not json"), 400)
    assert_json_error(send(client, "post", "/v3/memories/add/", raw=b"\xff\xfe{}"), 400)
    assert_json_error(send(client, "post", "/v3/memories/add/", body=[1, 2, 3]), 400)
    assert_json_error(send(client, "post", "/v3/memories/", body={"filters": {"user_id": ["a"] * 5}}), 400)


def test_a_body_over_the_size_limit_answers_json(hostile_world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    client = api_client(hostile_world.keys["acme"].full)
    body = {"messages": "x" * 20_000, "user_id": "mallory"}
    assert assert_json_error(send(client, "post", "/v3/memories/add/", body=body), 413)["error"]["code"]
    assert _count(hostile_world) == 0


def test_unknown_api_paths_answer_json(hostile_world):
    client = api_client(hostile_world.keys["acme"].full)
    assert_json_error(send(client, "get", "/v1/nothing-here/"), 404)
    assert_json_error(send(client, "get", "/api/nothing-here/"), 404)


def test_an_unexpected_error_on_an_api_path_answers_json(hostile_world, monkeypatch):
    from memadmin.memory import selectors

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "memory_counts", boom)
    client = api_client(hostile_world.keys["acme"].full)
    client.raise_request_exception = False
    response = send(client, "get", "/v1/entities/")
    assert response.status_code == 500 and response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert body["error"]["code"] == "server_error" and "a bug" not in response.content.decode()


# --- item 11: filter size ---------------------------------------------------------------------


def test_an_or_of_100k_user_ids_is_400_naming_the_limit(hostile_world):
    client = api_client(hostile_world.keys["acme"].full)
    body = {"filters": {"OR": [{"user_id": f"u{i}"} for i in range(100_000)]}}
    detail = assert_json_error(send(client, "post", "/v3/memories/", body=body), 400)["detail"]
    assert str(MAX_FILTER_TERMS) in detail


def test_3000_anded_ranges_are_400(hostile_world):
    client = api_client(hostile_world.keys["acme"].full)
    body = {"filters": {"AND": [{"user_id": "alice"}] + [{"created_at": {"gte": i}} for i in range(3000)]}}
    detail = assert_json_error(send(client, "post", "/v3/memories/", body=body), 400)["detail"]
    assert str(MAX_FILTER_TERMS) in detail


def test_filter_trees_are_bounded_in_depth():
    tree = {"user_id": "alice"}
    for _ in range(MAX_FILTER_DEPTH + 1):
        tree = {"AND": [tree]}
    with pytest.raises(ValidationError, match=str(MAX_FILTER_DEPTH)):
        filter_from_mem0(tree)


def test_many_in_lists_count_every_term():
    tree = {"OR": [{"user_id": {"in": [f"u{i}-{j}" for j in range(100)]}} for i in range(MAX_FILTER_TERMS // 50)]}
    with pytest.raises(ValidationError, match=str(MAX_FILTER_TERMS)):
        filter_from_mem0(tree)


def test_a_filter_at_the_limits_is_accepted():
    tree = {"OR": [{"user_id": f"u{i}"} for i in range(MAX_FILTER_TERMS)]}
    filter_from_mem0(tree)


# --- item 12: format characters in ids ----------------------------------------------------------


@pytest.mark.parametrize("value", ["a\u202egpj.exe", "a\u200bb", "\ufeffa", "a\u2066b", "a\u00adb", "a\u200db"])
def test_format_characters_are_rejected_in_ids(value):
    with pytest.raises(ValidationError, match="invisible or formatting"):
        clean_id(value, "user_id")


def test_format_characters_in_an_add_are_400(hostile_world):
    client = api_client(hostile_world.keys["acme"].full)
    body = {"messages": "hi", "user_id": "mallory\u202egpj.exe"}
    assert "user_id" in assert_json_error(send(client, "post", "/v3/memories/add/", body=body), 400)["detail"]
    assert _count(hostile_world, user_id="mallory\u202egpj.exe".replace("\u202e", "")) == 0


# --- item 3: the app_id alphabet ----------------------------------------------------------------

GOOD_APP_IDS = ["concierge_app", "sports_brand_portal", "a", "A-1", "x" * 64, "legacy_app", "0day"]
BAD_APP_IDS = ["x/y", "..", "a b", "-lead", "_lead", "a.b", "a:b", "é", "x" * 65, "a%2Fb", "*", "a\u202eb"]


@pytest.mark.parametrize("value", GOOD_APP_IDS)
def test_good_app_ids(value):
    assert clean_app_id(value) == value


@pytest.mark.parametrize("value", BAD_APP_IDS)
def test_bad_app_ids(value):
    with pytest.raises(ValidationError, match="app_id"):
        clean_app_id(value)


@pytest.mark.parametrize("value", ["x/y", "..", "a.b", "é"])
def test_the_api_never_creates_an_app_outside_the_alphabet(hostile_world, value):
    client = api_client(hostile_world.keys["acme"].full)
    body = {"messages": "hi", "user_id": "mallory", "app_id": value}
    assert "app_id" in assert_json_error(send(client, "post", "/v3/memories/add/", body=body), 400)["detail"]
    assert not hostile_world.acme.apps.filter(app_id=value).exists()
    body = {"filters": {"AND": [{"user_id": "alice"}, {"app_id": value}]}}
    assert_json_error(send(client, "post", "/v3/memories/", body=body), 400)


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 3900 + "]" * 3900,
        "{'user_id': " + "[" * 3900 + "]" * 3900 + "}",
        '{"user_id": "\\udfff"}',
        "{'user_id': '\\udfff'}",
        '{"AND": [{"user_id": "a"}, {"created_at": {"gte": NaN}}]}',
        "{'AND': [{'user_id': 'a'}, {'created_at': {'gte': 1e999}}]}",
    ],
)
def test_hostile_filters_in_a_query_string_are_400(hostile_world, raw):
    from urllib.parse import quote

    client = api_client(hostile_world.keys["acme"].full)
    assert_json_error(send(client, "delete", f"/v1/memories/?filters={quote(raw)}"), 400)
    assert _count(hostile_world, user_id="alice") == 2


def test_a_lone_surrogate_an_oss_writer_stored_does_not_break_reads(hostile_world, raw_valkey, staff_client):
    from django.urls import reverse

    from tests.memadmin.memory.rawhash import put

    app = hostile_world.acme.apps.get(app_id="concierge_app")
    memory_id = put(
        raw_valkey,
        app.collection_name,
        user_id="mallory",
        text="stored by Mem0 OSS",
        metadata={"k": SURROGATE, "ok": "fine"},
    )  # json.dumps writes the escape \udfff
    client = api_client(hostile_world.keys["acme"].full)
    got = send(client, "get", f"/v1/memories/{memory_id}/")
    assert got.status_code == 200 and json.loads(got.content)["metadata"] == {"k": "?", "ok": "fine"}
    listed = send(client, "post", "/v3/memories/", {"filters": {"user_id": "mallory"}})
    assert listed.status_code == 200 and json.loads(listed.content)["count"] == 1
    exported = send(client, "post", "/v1/exports/get/", {"filters": {"user_id": "mallory"}})
    assert json.loads(b"".join(exported.streaming_content))["count"] == 1
    staff = staff_client("acme", "support")
    assert staff.get(reverse("user", kwargs={"tenant_slug": "acme"}), {"user_id": "mallory"}).status_code == 200
    download = staff.get(
        reverse("user_export", kwargs={"tenant_slug": "acme"}), {"user_id": "mallory", "format": "json"}
    )
    assert len(json.loads(b"".join(download.streaming_content))) == 1
