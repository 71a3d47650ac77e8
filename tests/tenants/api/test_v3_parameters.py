"""Every parameter of Mem0's v3 add / get_all / search either works as the spec says or is refused by name.

The parameters are read from a pinned copy of the spec (tests/fixtures/mem0_v3_params.json, with its source
commit): one the copy gains fails test_every_v3_parameter_has_an_answer until tenants/api/platform.py puts it
in its "works" or its "refused" table. The rest runs the official mem0.MemoryClient against a live server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mem0.exceptions import ValidationError

from tenants.api.platform import REFUSED_PARAMETERS, WORKS

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = json.loads((Path(__file__).parents[2] / "fixtures" / "mem0_v3_params.json").read_text())
USER = "u_v3"


def test_every_v3_parameter_has_an_answer():
    assert SPEC["source"]["commit"] and SPEC["source"]["repository"] == "mem0ai/mem0"
    assert set(SPEC["operations"]) == set(WORKS) == set(REFUSED_PARAMETERS)
    for operation, spec in SPEC["operations"].items():
        works, refused = set(WORKS[operation]), set(REFUSED_PARAMETERS[operation])
        assert not works & refused, (operation, works & refused)
        unanswered = set(spec["parameters"]) - works - refused
        assert not unanswered, f"{operation}: give {sorted(unanswered)} an answer in tenants/api/platform.py"


@pytest.fixture
def seeded(live_world, memory_client):
    client = memory_client(live_world.acme_key)
    client.add("I am vegetarian and cook at home.", user_id=USER, agent_id="chef", metadata={"diet": "veg", "level": 3})
    client.add("I want a Window seat on flights.", user_id=USER, agent_id="travel", metadata={"level": 1})
    client.add("My sister is vegan.", user_id=USER, agent_id="chef", metadata={"diet": "vegan", "vip": True})
    client.add("I am vegetarian too.", user_id="u_other", agent_id="chef", metadata={"diet": "veg"})
    return client


def _texts(result) -> set[str]:
    items = result["results"] if isinstance(result, dict) else result
    return {m["memory"] for m in items}


VEG, SEAT, SISTER = "I am vegetarian and cook at home.", "I want a Window seat on flights.", "My sister is vegan."


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"user_id": USER, "NOT": [{"agent_id": "chef"}]}, {SEAT}),
        ({"AND": [{"user_id": USER}, {"agent_id": {"ne": "chef"}}]}, {SEAT}),
        ({"user_id": USER, "agent_id": {"nin": ["travel"]}}, {VEG, SISTER}),
        ({"user_id": USER, "memory": {"icontains": "WINDOW"}}, {SEAT}),
        ({"user_id": USER, "memory": {"contains": "window"}}, set()),  # contains is case-sensitive
        ({"user_id": USER, "memory": {"contains": "veg"}}, {VEG, SISTER}),
        ({"user_id": USER, "metadata": {"diet": "veg"}}, {VEG}),
        ({"user_id": USER, "metadata": {"level": {"gte": 2}}}, {VEG}),
        ({"user_id": USER, "metadata": {"diet": {"in": ["veg", "vegan"]}}}, {VEG, SISTER}),
        ({"user_id": USER, "metadata": {"vip": True}}, {SISTER}),
        ({"user_id": USER, "metadata": {"level": True}}, set()),  # JSON true is not 1
        ({"user_id": USER, "NOT": [{"metadata": {"diet": "vegan"}}, {"agent_id": "travel"}]}, {VEG}),
        ({"OR": [{"metadata": {"level": 1}}, {"memory": {"icontains": "sister"}}], "user_id": USER}, {SEAT, SISTER}),
    ],
)
def test_filter_operators_through_get_all_and_search(seeded, filters, expected):
    listed = seeded.get_all(filters=filters)
    assert _texts(listed) == expected and listed["count"] == len(expected)
    found = seeded.search("what do I eat and where do I sit", filters=filters, threshold=0.0, top_k=10)
    assert _texts(found) == expected


def test_get_all_keywords_fields_and_flags(seeded):
    veg = seeded.get_all(filters={"user_id": USER}, keywords="vegetarian")
    assert _texts(veg) == {VEG} and veg["count"] == 1
    assert _texts(seeded.get_all(filters={"user_id": USER}, keywords="VEG home")) == {VEG}
    assert _texts(seeded.get_all(filters={"user_id": USER}, keywords="nothing-like-this")) == set()
    projected = seeded.get_all(filters={"user_id": USER}, fields=["memory"])
    assert projected["count"] == 3 and all(set(m) == {"memory"} for m in projected["results"])
    plain = seeded.get_all(filters={"user_id": USER})
    assert seeded.get_all(filters={"user_id": USER}, show_expired=True, latest_only=True) == plain
    with pytest.raises(ValidationError, match="fields: unknown field"):
        seeded.get_all(filters={"user_id": USER}, fields=["memory", "categories"])


def test_search_fields_metadata_and_flags(seeded):
    found = seeded.search("food", filters={"user_id": USER}, metadata={"diet": "veg"}, fields=["id", "score"])
    assert len(found["results"]) == 1 and set(found["results"][0]) == {"id", "score"}
    plain = seeded.search("food", filters={"user_id": USER}, threshold=0.0)
    assert seeded.search("food", filters={"user_id": USER}, threshold=0.0, show_expired=True, latest_only=True) == plain
    # Metadata never widens the scope: another user's matching memory stays out.
    assert _texts(seeded.search("food", filters={"user_id": USER}, metadata={"diet": "veg"})) == {VEG}


@pytest.mark.parametrize(
    ("operation", "name"),
    [(op, name) for op, table in REFUSED_PARAMETERS.items() for name in table],
    ids=lambda part: part,
)
def test_refused_parameters_are_400_by_name(seeded, operation, name):
    value = [{"x": "y"}] if name == "custom_categories" else "2026-01-01" if "date" in name else True
    call = {
        "add": lambda: seeded.add("hello", user_id=USER, **{name: value}),
        "get_all": lambda: seeded.get_all(filters={"user_id": USER}, **{name: value}),
        "search": lambda: seeded.search("hello", filters={"user_id": USER}, **{name: value}),
    }[operation]
    with pytest.raises(ValidationError, match=f"{name}: not supported by memadmin: "):
        call()
    assert seeded.get_all(filters={"user_id": USER})["count"] == 3  # nothing was written


def test_categories_match_the_tags_a_platform_import_kept(seeded):
    """memadmin tags nothing itself; memories imported from the platform keep its categories in metadata."""
    seeded.add("I run on Sundays.", user_id=USER, metadata={"categories": ["sports", "health"]})
    assert _texts(seeded.get_all(filters={"user_id": USER}, categories=["health", "travel"])) == {"I run on Sundays."}
    assert _texts(seeded.get_all(filters={"user_id": USER, "categories": {"in": ["sports"]}})) == {"I run on Sundays."}
    assert _texts(seeded.get_all(filters={"user_id": USER, "categories": {"contains": "food"}})) == set()
    found = seeded.search("exercise", filters={"user_id": USER}, categories=["sports"], threshold=0.0)
    assert _texts(found) == {"I run on Sundays."}


def test_text_filters_in_delete_all_are_refused(seeded):
    with pytest.raises(ValidationError, match="delete_all filters on ids and times only"):
        seeded.delete_all(filters={"user_id": USER, "metadata": {"diet": "veg"}})
    assert seeded.get_all(filters={"user_id": USER})["count"] == 3
