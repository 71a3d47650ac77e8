"""The v3 filter operators (NOT, ne / nin, contains / icontains on the text, metadata) and get_all's keywords
and fields, given hostile values: a 400 naming the problem, never a 500; and never a memory outside the scope,
whatever the operator (a NOT can only narrow what the scope selects, never widen it)."""

import json

import pytest

from memadmin.memory import post_filters
from memadmin.memory.filters import MAX_FILTER_DEPTH, MAX_IN_VALUES
from tests.support.hostile import OUTSIDE_CONCIERGE, api_client, assert_json_error, marker, send

LIST, SEARCH = "/v3/memories/", "/v3/memories/search/"
SURROGATE = "\udfff"


def _texts(response) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    return [m["memory"] for m in json.loads(response.content)["results"]]


HOSTILE_FILTERS = [
    pytest.param({"memory": {"contains": 5}}, id="contains-number"),
    pytest.param({"memory": {"contains": ["tea"]}}, id="contains-list"),
    pytest.param({"memory": {"icontains": None}}, id="icontains-null"),
    pytest.param({"memory": {"icontains": ""}}, id="icontains-empty"),
    pytest.param({"memory": {"icontains": "x" * 1001}}, id="icontains-too-long"),
    pytest.param({"memory": {"icontains": f"tea{SURROGATE}"}}, id="icontains-surrogate"),
    pytest.param({"memory": {"regex": ".*"}}, id="memory-unknown-operator"),
    pytest.param({"memory": "tea"}, id="memory-bare-value"),
    pytest.param({"metadata": "diet"}, id="metadata-not-an-object"),
    pytest.param({"metadata": {}}, id="metadata-empty"),
    pytest.param({"metadata": {"diet": {"veg": 1}}}, id="metadata-nested-object"),
    pytest.param({"metadata": {"diet": ["veg"]}}, id="metadata-list-value"),
    pytest.param({"metadata": {"level": {"gte": "3"}}}, id="metadata-range-string"),
    pytest.param({"metadata": {"level": {"gte": True}}}, id="metadata-range-bool"),
    pytest.param({"metadata": {"diet": {"in": list(range(MAX_IN_VALUES + 1))}}}, id="metadata-in-too-long"),
    pytest.param({"metadata": {"diet": {"in": []}}}, id="metadata-in-empty"),
    pytest.param({"metadata": {"k" * 129: "v"}}, id="metadata-key-too-long"),
    pytest.param({"metadata": {SURROGATE: "v"}}, id="metadata-key-surrogate"),
    pytest.param({"metadata": {"diet": {"exec": "x"}}}, id="metadata-unknown-operator"),
    pytest.param({"NOT": []}, id="not-empty"),
    pytest.param({"NOT": "user_id"}, id="not-a-string"),
    pytest.param({"NOT": [{"password": "x"}]}, id="not-unknown-field"),
    pytest.param({"agent_id": {"ne": f"a{SURROGATE}"}}, id="ne-surrogate"),
    pytest.param({"agent_id": {"ne": "a\u202eb"}}, id="ne-bidi"),
    pytest.param({"agent_id": {"nin": "concierge"}}, id="nin-not-a-list"),
    pytest.param({"agent_id": {}}, id="no-operator"),
    pytest.param({"categories": "food"}, id="categories-string"),
    pytest.param({"categories": []}, id="categories-empty"),
    pytest.param({"categories": {"in": ["food"], "nin": ["x"]}}, id="categories-two-operators"),
    pytest.param({"categories": [{"a": 1}]}, id="categories-object"),
    pytest.param({"categories": ["f"] * (MAX_IN_VALUES + 1)}, id="categories-too-many"),
]


@pytest.mark.parametrize("condition", HOSTILE_FILTERS)
@pytest.mark.parametrize("url", [LIST, SEARCH])
def test_hostile_operator_values_are_400(hostile_world, url, condition):
    client = api_client(hostile_world.keys["acme"].full)
    body = {"filters": {"AND": [{"user_id": "alice"}, condition]}, "query": "tea"}
    assert_json_error(send(client, "post", url, body), 400)


def test_a_not_nested_past_the_depth_limit_is_400(hostile_world):
    condition = {"user_id": "alice"}
    for _ in range(MAX_FILTER_DEPTH + 1):
        condition = {"NOT": [condition]}
    client = api_client(hostile_world.keys["acme"].full)
    assert "nested too deeply" in assert_json_error(send(client, "post", LIST, {"filters": condition}), 400)["detail"]


@pytest.mark.parametrize("url", [LIST, SEARCH])
def test_not_never_widens_the_scope(hostile_world, url):
    """A key sees its own tenant only, a restricted key its own apps only, whatever it negates."""
    acme, globex = hostile_world.keys["acme"], marker(hostile_world.globex)
    body = {"query": "likes", "threshold": 0.0, "filters": {"NOT": [{"user_id": "nobody"}]}}
    texts = _texts(send(api_client(acme.full), "post", url, body))
    assert texts and not any(globex in t for t in texts)
    texts = _texts(send(api_client(acme.restricted), "post", url, body))
    assert texts and not any(OUTSIDE_CONCIERGE in t or globex in t for t in texts)
    # Negating an app the key may not use names it: "not found", as naming it would be.
    body["filters"] = {"user_id": "alice", "NOT": [{"app_id": "sports_portal"}]}
    assert_json_error(send(api_client(acme.restricted), "post", url, body), 404)


@pytest.mark.parametrize("url", [LIST, SEARCH])
def test_text_filters_stay_inside_the_scope(hostile_world, url):
    acme = hostile_world.keys["acme"]
    client = api_client(acme.restricted)
    # Query syntax in a contains value is plain text: it matches nothing and escapes nothing.
    for value in ("*", "@user_id:{bob}", "} | @user_id:{*", "chess", marker(hostile_world.globex)):
        body = {"query": "x", "threshold": 0.0, "filters": {"user_id": "alice", "memory": {"icontains": value}}}
        assert _texts(send(client, "post", url, body)) == []
    body = {"query": "x", "threshold": 0.0, "filters": {"user_id": "alice", "memory": {"icontains": "tea"}}}
    assert _texts(send(client, "post", url, body)) == [f"{marker(hostile_world.acme)} alice likes tea"]


def test_a_post_filter_reads_a_bounded_number_of_candidates(hostile_world, monkeypatch):
    monkeypatch.setattr(post_filters, "MAX_CANDIDATES", 1)
    client = api_client(hostile_world.keys["acme"].full)
    body = {"filters": {"OR": [{"user_id": "alice"}, {"user_id": "bob"}], "memory": {"icontains": "tea"}}}
    assert "read at most 1 memories" in assert_json_error(send(client, "post", LIST, body), 400)["detail"]
    body["filters"] = {"user_id": "bob", "memory": {"icontains": "coffee"}}  # one candidate: within the bound
    assert _texts(send(client, "post", LIST, body)) == [f"{marker(hostile_world.acme)} bob likes coffee"]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"keywords": " ".join(f"w{i}" for i in range(21))}, id="too-many-keywords"),
        pytest.param({"keywords": "x" * 1001}, id="keywords-too-long"),
        pytest.param({"fields": ["memory", "embedding"]}, id="fields-unknown"),
        pytest.param({"fields": "memory"}, id="fields-string"),
        pytest.param({"fields": ["m"] * 21}, id="fields-too-many"),
        pytest.param({"show_expired": "maybe"}, id="show_expired-not-bool"),
        pytest.param({"categories": "food"}, id="categories-string"),
        pytest.param({"categories": ["x" * 1001]}, id="categories-too-long"),
    ],
)
def test_hostile_get_all_parameters_are_400(hostile_world, extra):
    client = api_client(hostile_world.keys["acme"].full)
    assert_json_error(send(client, "post", LIST, {"filters": {"user_id": "alice"}, **extra}), 400)


def test_text_filters_are_no_deletion_or_export_criteria(hostile_world):
    client = api_client(hostile_world.keys["acme"].full)
    raw = json.dumps({"user_id": "alice", "memory": {"icontains": "tea"}})
    assert_json_error(send(client, "delete", f"/v1/memories/?filters={raw}"), 400)
    body = {"filters": {"user_id": "alice", "metadata": {"diet": "veg"}}}
    assert_json_error(send(client, "post", "/v1/exports/", {"schema": {}, **body}), 400)
    assert_json_error(send(client, "post", "/v1/exports/get/", body), 400)
    assert len(_texts(send(client, "post", LIST, {"filters": {"user_id": "alice"}}))) == 2
