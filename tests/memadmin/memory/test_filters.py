"""The filter tree's new nodes: NOT, ne / nin, text and metadata conditions: what they match, what the index is
asked for them (a superset, narrowed by the post-filter), and their JSON form for jobs."""

import pytest

from memadmin.memory.errors import ValidationError
from memadmin.memory.filters import (
    EVERYTHING,
    NOTHING,
    Eq,
    Not,
    filter_from_mem0,
    for_app,
    index_part,
    needs_post_filter,
    node_from_data,
    node_to_data,
    render,
)

ALICE = {"user_id": "alice", "agent_id": "chef", "memory": "Likes Green tea", "metadata": {"diet": "veg", "n": 2}}


@pytest.mark.parametrize(
    ("filters", "matches"),
    [
        ({"NOT": [{"agent_id": "chef"}]}, False),
        ({"NOT": [{"agent_id": "travel"}, {"user_id": "bob"}]}, True),
        ({"agent_id": {"ne": "chef"}}, False),
        ({"agent_id": {"nin": ["travel", "x"]}}, True),
        ({"memory": {"contains": "green"}}, False),
        ({"memory": {"icontains": "GREEN TEA"}}, True),
        ({"metadata": {"diet": "veg", "n": {"gt": 1, "lt": 3}}}, True),
        ({"metadata": {"diet": {"ne": "veg"}}}, False),
        ({"metadata": {"missing": {"ne": "x"}}}, False),
        ({"metadata": {"n": {"in": [True, 2]}}}, True),
        ({"metadata": {"n": True}}, False),
    ],
)
def test_matches(filters, matches):
    assert filter_from_mem0(filters).matches(ALICE) is matches


def test_render_negations_and_what_the_index_is_asked():
    assert render(filter_from_mem0({"NOT": [{"agent_id": "chef"}]})) == "-(@agent_id:{chef})"
    tree = filter_from_mem0({"user_id": "alice", "NOT": [{"metadata": {"diet": "veg"}}], "agent_id": {"ne": "x"}})
    assert needs_post_filter(tree)
    assert render(index_part(tree)) == "(@user_id:{alice} -(@agent_id:{x}))"  # the NOT over metadata: everything
    with pytest.raises(ValidationError, match="get_all and search only"):
        render(tree)
    assert not needs_post_filter(filter_from_mem0({"user_id": "alice", "NOT": [{"agent_id": "chef"}]}))


def test_not_of_an_app_is_resolved_per_app():
    tree = filter_from_mem0({"NOT": [{"app_id": "shop"}]})
    assert for_app(tree, "shop") == NOTHING and for_app(tree, "blog") == EVERYTHING
    assert for_app(Not(Eq("user_id", "a")), "shop") == Not(Eq("user_id", "a"))


def test_json_form_round_trips():
    tree = filter_from_mem0(
        {
            "user_id": "alice",
            "NOT": [{"memory": {"icontains": "tea"}}, {"agent_id": {"in": ["a"]}}],
            "metadata": {"n": {"in": [1, 2]}},
        }
    )
    assert node_from_data(node_to_data(tree)) == tree
