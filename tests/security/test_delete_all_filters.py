"""delete_all(filters=...): mem0.MemoryClient (2.2.1) puts the filters dict into the query string as its Python
repr. It is parsed as data (never evaluated), bounded, and anything that is not a JSON-like literal is a 400 that
says what to send; nothing is deleted by a refused request, and no filter reaches another tenant."""

from urllib.parse import quote

import pytest

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tenants.scoping import scope_for_membership
from tests.support.hostile import api_client, assert_json_error, send


def _count(world, slug="acme", user_id="alice") -> int:
    scope = scope_for_membership(getattr(world, f"{slug}_admin"))
    return selectors.memory_count(scope=scope, filters=filter_from_fields(user_id=user_id))


def _delete_all(client, raw: str):
    return send(client, "delete", f"/v1/memories/?filters={quote(raw.encode('utf-8', 'surrogatepass'), safe='')}")


HOSTILE = [
    pytest.param("__import__('os').system('true')", id="call"),
    pytest.param("{'user_id': __import__('os').getcwd()}", id="call-inside"),
    pytest.param("{'user_id': 'alice'} if True else 0", id="conditional"),
    pytest.param("(lambda: 1)()", id="lambda"),
    pytest.param("{'user_id': 'ali' + 'ce'}", id="binop"),
    pytest.param("{**{'user_id': 'alice'}}", id="dict-unpacking"),
    pytest.param("{'user_id': {'alice'}}", id="set"),
    pytest.param("{'user_id': ('alice',)}", id="tuple"),
    pytest.param("{'user_id': b'alice'}", id="bytes"),
    pytest.param("{'user_id': 1+2j}", id="complex"),
    pytest.param("{1: 'alice'}", id="int-key"),
    pytest.param("{'user_id': ...}", id="ellipsis"),
    pytest.param("{'user_id': f'{1}'}", id="f-string"),
    pytest.param("{'created_at': {'gte': 1e999}, 'user_id': 'alice'}", id="inf"),
    pytest.param("{'created_at': {'gte': -1e999}, 'user_id': 'alice'}", id="minus-inf"),
    pytest.param("{'user_id': " + "9" * 5000 + "}", id="5000-digit-int"),
    pytest.param("{'user_id': '\\udfff'}", id="lone-surrogate-escape"),
    pytest.param("{'a': " * 40 + "1" + "}" * 40, id="40-deep"),
    pytest.param("[" * 3900 + "]" * 3900, id="3900-deep-list"),
    pytest.param("-" * 7000 + "1", id="7000-unary-minus"),
    pytest.param("{'user_id': 'alice'" + ", 'x': 1" * 2000 + "}", id="over-8000-chars"),
    pytest.param("{'user_id': 'alice'", id="unterminated"),
    pytest.param("{'user_id': '*'}", id="wildcard-pins-nothing"),
    pytest.param("{'app_id': {'in': ['concierge_app']}}", id="a-list-of-one-app"),
    pytest.param("[{'user_id': 'alice'}]", id="list-at-top"),
    pytest.param("'alice'", id="string-at-top"),
    pytest.param("{'AND': [{'user_id': 'alice'}, {'colour': 'red'}]}", id="unknown-field"),
]


@pytest.mark.parametrize("raw", HOSTILE)
@pytest.mark.parametrize("key_kind", ["full", "restricted"])
def test_hostile_filters_reprs_are_400_and_delete_nothing(hostile_world, raw, key_kind):
    client = api_client(getattr(hostile_world.keys["acme"], key_kind))
    body = assert_json_error(_delete_all(client, raw), 400)
    assert body["error"]["field"] in ("filters", "user_id", "colour", None), body
    assert _count(hostile_world) == 2 and _count(hostile_world, "globex") == 2


def test_one_app_alone_in_the_repr_is_an_offboarding_request_never_a_deletion(hostile_world, settings):
    """The client's repr of {'app_id': X}: the full key schedules the app's offboarding (here with a grace period:
    nothing is deleted yet), the app-restricted key is refused with the reason; neither deletes anything now."""
    settings.MEMADMIN_OFFBOARD_GRACE_HOURS = 24
    raw = "{'app_id': 'concierge_app'}"
    refused = _delete_all(api_client(hostile_world.keys["acme"].restricted), raw)
    assert "restricted to some apps" in assert_json_error(refused, 403)["detail"]
    scheduled = _delete_all(api_client(hostile_world.keys["acme"].full), raw)
    assert scheduled.status_code == 202 and scheduled.json()["state"] == "scheduled", scheduled.content
    assert _count(hostile_world) == 2 and _count(hostile_world, "globex") == 2


@pytest.mark.parametrize("raw", ["__import__('os')", "{'user_id': b'x'}", "{'user_id': (1,)}", "{1,2}"])
def test_the_refusal_says_what_to_send(hostile_world, raw):
    body = assert_json_error(_delete_all(api_client(hostile_world.keys["acme"].full), raw), 400)
    assert 'filters={"user_id": "alice"}' in body["detail"] and "Python repr" in body["detail"]


def test_the_clients_repr_deletes_exactly_the_scope(hostile_world):
    """The encoding the client really makes (repr of a nested dict), with hostile-looking but valid ids."""
    client = api_client(hostile_world.keys["acme"].full)
    raw = repr({"AND": [{"user_id": "alice"}, {"app_id": "concierge_app"}, {"created_at": {"gte": -1}}]})
    response = _delete_all(client, raw)
    assert response.status_code == 200, response.content
    assert response.json()["deleted"] == 1 and response.json()["remaining"] == 0
    assert _count(hostile_world) == 1  # alice's memory outside concierge_app stays
    assert _count(hostile_world, "globex") == 2  # the same user_id in the other tenant is another person


def test_a_restricted_key_cannot_widen_itself_through_the_repr(hostile_world):
    client = api_client(hostile_world.keys["acme"].restricted)
    raw = repr({"AND": [{"user_id": "alice"}, {"app_id": "sports_portal"}]})
    assert_json_error(_delete_all(client, raw), 404)
    raw = repr({"user_id": "alice"})  # no app named: only its own app is touched
    assert _delete_all(client, raw).json()["deleted"] == 1
    assert _count(hostile_world) == 1


@pytest.mark.parametrize("role", ["admin", "support", "viewer"])
def test_staff_roles_with_a_repr(hostile_world, staff_client, role):
    client = staff_client("acme", role)
    response = _delete_all(client, repr({"user_id": "bob"}))
    if role == "viewer":
        assert_json_error(response, 403)
        assert _count(hostile_world, user_id="bob") == 1
    else:
        assert response.status_code == 200 and response.json()["deleted"] == 1


def test_other_tenants_key_reaches_nothing(hostile_world):
    response = _delete_all(api_client(hostile_world.keys["globex"].full), repr({"user_id": "bob"}))
    assert response.status_code == 200 and response.json()["deleted"] == 1
    assert _count(hostile_world, user_id="bob") == 1  # acme's bob untouched
