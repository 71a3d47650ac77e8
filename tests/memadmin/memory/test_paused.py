"""A paused app (AppRef.paused): the service refuses an API key's adds, updates and deletions with AppPaused
(423, naming the app); staff, end users' own links and jobs still write, and everyone still reads."""

import pytest

from memadmin.memory import selectors, services
from memadmin.memory.errors import AppPaused
from memadmin.memory.filters import filter_from_fields
from tenants.models import App


@pytest.fixture
def paused(world, add):
    record = add(world.admin(world.acme), "concierge_app", "alice", "Alice likes jazz")
    App.objects.filter(pk=world.acme_concierge.pk).update(paused_at="2026-01-01T00:00:00Z", paused_by="staff:x")
    return record


def _writes(scope, record):
    return {
        "add": lambda: services.memory_add(scope=scope, app_id="concierge_app", messages="more", user_id="alice"),
        "update": lambda: services.memory_update(scope=scope, memory_id=record.id, text="Alice likes blues"),
        "delete": lambda: services.memory_delete(scope=scope, memory_id=record.id),
        "delete_batch": lambda: services.memory_delete_batch(scope=scope, memory_ids=[(record.id, "concierge_app")]),
        "delete_matching": lambda: services.memory_delete_matching(
            scope=scope, filters=filter_from_fields(user_id="alice")
        ),
    }


@pytest.mark.parametrize("kind", ["add", "update", "delete", "delete_batch", "delete_matching"])
def test_an_api_key_writes_nothing_into_a_paused_app(world, paused, kind):
    scope = world.api_key(world.acme)
    assert scope.app("concierge_app").paused
    with pytest.raises(AppPaused, match="App concierge_app is paused") as info:
        _writes(scope, paused)[kind]()
    assert info.value.status == 423 and info.value.details["app_id"] == "concierge_app"
    assert selectors.memory_get(scope=scope, memory_id=paused.id).memory == "Alice likes jazz"  # reads work


def test_the_key_writes_into_the_tenants_other_apps(world, paused):
    scope = world.api_key(world.acme)
    [record] = services.memory_add(scope=scope, app_id="sports_portal", messages="Plays chess", user_id="alice")
    assert record.app_id == "sports_portal"


def test_an_end_users_own_deletion_goes_through(world, paused):
    result = services.memory_delete(scope=world.end_user(world.acme, "alice"), memory_id=paused.id)
    assert result.deleted == 1 and result.remaining == 0


def test_staff_write_and_delete(world, paused):
    scope = world.admin(world.acme)
    assert services.memory_update(scope=scope, memory_id=paused.id, text="Alice likes blues").memory == (
        "Alice likes blues"
    )
    assert services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="alice")).deleted == 1
