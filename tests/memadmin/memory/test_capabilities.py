import pytest

from memadmin.memory.capabilities import ALL, CAPABILITIES, NOTHING, Can


@pytest.mark.parametrize("role", sorted(CAPABILITIES))
def test_can_names_every_capability_of_the_table_as_a_flag(role):
    can = Can(CAPABILITIES[role])
    assert {name for name in ALL if getattr(can, name)} == CAPABILITIES[role]


def test_a_name_that_is_no_capability_is_an_error_not_a_quiet_no():
    with pytest.raises(AttributeError, match="'ofboard' is not a capability"):
        Can(ALL).ofboard  # noqa: B018


def test_nothing_grants_nothing():
    assert not any(getattr(NOTHING, name) for name in ALL)
