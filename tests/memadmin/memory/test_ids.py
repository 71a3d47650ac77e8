"""The injection list: ids are exact, case-sensitive, never split and never query syntax.

Decision (memadmin/memory/ids.py): punctuation, non-ASCII and emoji are accepted
and matched exactly; empty, whitespace-only, internal whitespace, control
characters and over-long ids are a ValidationError naming the field; a bare
``*`` is a ValidationError when writing and means "any non-null" in a filter.
"""

import pytest

from memadmin.memory import selectors, services
from memadmin.memory.errors import NotFound, ValidationError
from memadmin.memory.filters import filter_from_fields, filter_from_mem0
from tests.memadmin.memory.rawhash import keys_of, put

ACCEPTED = [
    "a|b",
    "a,b",
    "{x}",
    "x}",
    "{",
    "}",
    "a\\b",
    "\\",
    'a"b',
    '"',
    "@user_id:{x}",
    "x})|(@user_id:{*",
    "😀",
    "Ünïcødé-名前",
    "*alice",
    "alice*",
    "a-b",
    "a:b",
    "(x)",
    "$x",
    "'x'",
    "a%b&c=d",
    "-x",
    "Alice",
    "a" * 128,
]
DECOYS = ["a", "b", "x", "alice", "ALICE", "ab", "a,b,c", "{x}x", "a\\\\b", "user_id"]

REJECTED = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="whitespace-only"),
    pytest.param("a" * 129, id="129-chars"),
    pytest.param("a b", id="inner-space"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\x1fb", id="unit-separator"),
    pytest.param("a\u2028b", id="line-separator"),
    pytest.param("a\x7fb", id="del"),
    pytest.param("*", id="bare-star"),
]


@pytest.fixture
def decoys(world, raw_valkey):
    """Users whose ids an injected or split query would match, in the app the target writes to."""
    collection = world.acme_concierge.collection_name
    selectors.memory_count(scope=world.admin(world.acme))  # creates the indexes
    return {user: put(raw_valkey, collection, user_id=user, agent_id=user, run_id=user) for user in DECOYS}


@pytest.mark.parametrize("value", ACCEPTED)
def test_accepted_id_matches_exactly_that_id(world, add, decoys, raw_valkey, value):
    scope = world.admin(world.acme)
    decoy_ids = {memory_id for user, memory_id in decoys.items() if user != value}
    record = add(scope, "concierge_app", value, f"memory of {value}", agent_id=value, run_id=value)
    assert record.user_id == value

    stored = selectors.memory_get(scope=scope, memory_id=record.id)
    assert (stored.user_id, stored.agent_id, stored.run_id) == (value, value, value)

    for field in ("user_id", "agent_id", "run_id"):
        filters = filter_from_fields(**{field: value})
        page = selectors.memory_list(scope=scope, filters=filters)
        assert [r.id for r in page.items] == [record.id], field
        assert page.total == 1
        assert selectors.memory_count(scope=scope, filters=filters) == 1
        assert [i["id"] for i in selectors.memory_export(scope=scope, filters=filters)] == [record.id]
        counts = selectors.memory_counts(scope=scope, filters=filters)
        assert counts.total == 1 and dict(counts.per_user) == {value: 1}
    found = selectors.memory_search(scope=scope, query="memory", filters=filter_from_fields(user_id=value))
    assert [r.id for r in found] == [record.id]
    mem0_style = filter_from_mem0({"AND": [{"user_id": {"in": [value, "nobody"]}}, {"agent_id": value}]})
    assert [r.id for r in selectors.memory_list(scope=scope, filters=mem0_style).items] == [record.id]

    result = services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id=value))
    assert (result.deleted, result.remaining) == (1, 0)
    remaining = {key.decode().rsplit(":", 1)[-1] for key in keys_of(raw_valkey, world.acme_concierge.collection_name)}
    assert remaining == decoy_ids


@pytest.mark.parametrize(
    "value,never_sees",
    [
        ("a|b", {"a", "b"}),
        ("a,b", {"a", "b"}),
        ("Alice", {"alice", "ALICE"}),
        ("alice", {"Alice", "ALICE"}),
        ("{x}x", {"x"}),
        ("a\\\\b", {"a", "b"}),
    ],
)
def test_lookalike_users_never_see_each_other(world, decoys, raw_valkey, value, never_sees):
    for user in (value, *never_sees):
        if user not in decoys:
            decoys[user] = put(raw_valkey, world.acme_concierge.collection_name, user_id=user)
    end_user = world.end_user(world.acme, value)
    visible = selectors.memory_list(scope=end_user).items
    assert {r.user_id for r in visible} == {value}
    assert not {r.user_id for r in visible} & never_sees
    for other in never_sees:
        with pytest.raises(NotFound):
            selectors.memory_get(scope=end_user, memory_id=decoys[other])
    staff = world.admin(world.acme)
    assert {r.user_id for r in selectors.memory_list(scope=staff, filters=filter_from_fields(user_id=value)).items} == {
        value
    }


def test_surrounding_whitespace_is_stripped(world, add):
    scope = world.admin(world.acme)
    record = add(scope, "concierge_app", "  alice\t", "hello", agent_id=" booker ")
    stored = selectors.memory_get(scope=scope, memory_id=record.id)
    assert (stored.user_id, stored.agent_id) == ("alice", "booker")
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id=" alice ")) == 1


@pytest.mark.parametrize("value", REJECTED)
@pytest.mark.parametrize("field", ["user_id", "agent_id", "run_id"])
def test_rejected_id_is_a_validation_error_on_write(world, raw_valkey, field, value):
    scope = world.admin(world.acme)
    kwargs = {"user_id": "alice", field: value}
    if field != "user_id" and value == "":
        # An empty optional id means "not set", like Mem0.
        records = services.memory_add(scope=scope, app_id="concierge_app", messages="x", **kwargs)
        assert getattr(records[0], field) is None
        return
    with pytest.raises(ValidationError) as caught:
        services.memory_add(scope=scope, app_id="concierge_app", messages="x", **kwargs)
    assert caught.value.field == field
    assert caught.value.status == 400
    assert not keys_of(raw_valkey, world.acme_concierge.collection_name)


@pytest.mark.parametrize("value", [v for v in REJECTED if v.values[0] not in ("", "*")])
@pytest.mark.parametrize("field", ["user_id", "agent_id", "run_id", "app_id"])
def test_rejected_id_is_a_validation_error_in_filters(field, value):
    with pytest.raises(ValidationError) as caught:
        filter_from_fields(**{field: value})
    assert caught.value.field == field
    with pytest.raises(ValidationError):
        filter_from_mem0({field: value})
    with pytest.raises(ValidationError):
        filter_from_mem0({field: {"in": ["ok", value]}})


@pytest.mark.parametrize("value", [v for v in REJECTED if v.values[0] != "*"])
def test_rejected_memory_id_is_a_validation_error(world, value):
    scope = world.admin(world.acme)
    with pytest.raises(ValidationError):
        selectors.memory_get(scope=scope, memory_id=value)
    with pytest.raises(ValidationError):
        services.memory_delete(scope=scope, memory_id=value)


@pytest.mark.parametrize("value", ["*", "@user_id:{x}", "x}|@user_id:{alice", "mem0:*"])
def test_memory_id_is_never_a_pattern(world, add, value):
    scope = world.admin(world.acme)
    add(scope, "concierge_app", "alice", "hello")
    # A bare '*' is refused outright; anything else is looked up as that exact key.
    with pytest.raises(ValidationError if value == "*" else NotFound):
        selectors.memory_get(scope=scope, memory_id=value)
    with pytest.raises(ValidationError if value == "*" else NotFound):
        services.memory_delete(scope=scope, memory_id=value)
    assert selectors.memory_count(scope=scope) == 1


def test_star_means_any_non_null_value(world, add, raw_valkey):
    scope = world.admin(world.acme)
    with_agent = add(scope, "concierge_app", "alice", "with agent", agent_id="booker", run_id="r1")
    without = add(scope, "concierge_app", "alice", "without agent")
    collection = world.acme_concierge.collection_name
    empty_agent = put(raw_valkey, collection, user_id="alice", agent_id="", run_id="")
    literal_star = put(raw_valkey, collection, user_id="bob", agent_id="*")

    def ids(**fields):
        return {r.id for r in selectors.memory_list(scope=scope, filters=filter_from_fields(**fields)).items}

    assert ids(agent_id="*") == {with_agent.id, literal_star}
    assert ids(run_id="*") == {with_agent.id}
    assert ids(user_id="*") == {with_agent.id, without.id, empty_agent, literal_star}
    assert ids(user_id="alice", agent_id="*") == {with_agent.id}
    assert selectors.memory_count(scope=scope, filters=filter_from_mem0({"agent_id": "*"})) == 2
    found = selectors.memory_search(scope=scope, query="agent", filters=filter_from_fields(agent_id="*"))
    assert {r.id for r in found} == {with_agent.id, literal_star}
    assert {i["id"] for i in selectors.memory_export(scope=scope, filters=filter_from_fields(agent_id="*"))} == {
        with_agent.id,
        literal_star,
    }
    # Deleting "every memory with an agent" of alice leaves the ones without.
    result = services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="alice", agent_id="*"))
    assert (result.deleted, result.remaining) == (1, 0)
    assert ids(user_id="alice") == {without.id, empty_agent}
