"""More than one Valkey (memadmin/memory/store.py): the store registry (MEMADMIN_STORES), every read, write and
deletion of an app going to the store its place names (handed down, never looked up), placing new apps, and the
URL agents are shown.

Two real servers: the session's ("default") and a second one ("second", tests/conftest.py two_stores)."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from memadmin.env import env_stores
from memadmin.memory import bulk, collections, index, index_queries, selectors, services, store
from memadmin.memory.consistency import consistency_check, index_health
from memadmin.memory.errors import StoreUnavailable
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.scope import AppRef
from tenants.app_services import app_create
from tenants.models import App
from tests.factories import AppFactory


def keys(client, collection: str) -> int:
    return sum(1 for _ in client.scan_iter(match=f"mem0:{collection}:*", count=1000))


@pytest.fixture
def split(world, two_stores, raw_valkey):
    """acme's sports_portal lives on "second"; everything else on "default"."""
    App.objects.filter(pk=world.acme_sports.pk).update(store="second")
    world.acme_sports.refresh_from_db()
    world.default, world.second = raw_valkey, two_stores.client()
    return world


# --- the registry -----------------------------------------------------------------------


def test_stores_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MEMADMIN_STORES", "eu2=valkey://:s3cret@10.0.0.2:6379/0, big=rediss://h:6380")
    assert env_stores("MEMADMIN_STORES") == {"eu2": "valkey://:s3cret@10.0.0.2:6379/0", "big": "rediss://h:6380"}
    monkeypatch.delenv("MEMADMIN_STORES")
    assert env_stores("MEMADMIN_STORES") == {}


@pytest.mark.parametrize(
    "value, message",
    [
        ("default=valkey://h:1", "taken"),
        ("a=valkey://h:1 a=valkey://h:2", "taken"),
        ("Big=valkey://h:1", "lower-case"),
        ("novalue", "name=url"),
        ("../x=valkey://h:1", "lower-case"),
        ("x=http://:hunter2@h:1", "must start with"),
    ],
)
def test_a_bad_store_list_stops_the_process_without_echoing_secrets(monkeypatch, value, message):
    monkeypatch.setenv("MEMADMIN_STORES", value)
    with pytest.raises(ImproperlyConfigured, match=message) as caught:
        env_stores("MEMADMIN_STORES")
    assert "hunter2" not in str(caught.value)


def test_public_url_hides_the_password(settings):
    settings.MEMADMIN_STORES = {
        "a": "valkey://:s3cret@10.0.0.2:6379/0",
        "b": "valkeys://agent:pw@[::1]:6380",
        "c": "valkey://h:1",
    }
    assert store.public_url("a") == "valkey://10.0.0.2:6379/0"
    assert store.public_url("b") == "valkeys://agent@[::1]:6380"
    assert store.public_url("c") == "valkey://h:1"
    assert "s3cret" not in store.public_url("a")


def test_an_app_on_a_store_no_longer_configured_is_unavailable_not_misread(split, add):
    App.objects.filter(pk=split.acme_sports.pk).update(store="gone")
    with pytest.raises(StoreUnavailable, match="gone"):
        selectors.memory_count(scope=split.admin(split.acme), filters=filter_from_fields(app_id="sports_portal"))


def test_a_place_on_the_second_store_reads_the_second_server_with_no_scope_built(two_stores, raw_valkey):
    """Nothing in this process has seen the collection: the place alone says where it is."""
    second = two_stores.client()
    second.hset(
        "mem0:ma_never_seen:one", mapping={"memory_id": "one", "memory": "there", "user_id": "u", "created_at": 1}
    )
    there, here = store.Place("second", "ma_never_seen"), store.Place("default", "ma_never_seen")
    index.ensure(there)
    assert second.execute_command("FT.INFO", "ma_never_seen")
    assert index_queries.count(there, "*") == 1
    assert index.info(here) is None  # the same name on the default store is another (absent) collection
    assert not raw_valkey.exists("mem0:ma_never_seen:one")


# --- every call goes to the app's store ---------------------------------------------------


def test_writes_reads_and_deletions_go_to_the_apps_store(split, add):
    scope = split.admin(split.acme)
    here = add(scope, "concierge_app", "alice", "Alice prefers aisle seats")
    there = add(scope, "sports_portal", "alice", "Alice runs every morning")
    concierge, sports = split.acme_concierge.collection_name, split.acme_sports.collection_name
    assert (keys(split.default, concierge), keys(split.second, concierge)) == (1, 0)
    assert (keys(split.default, sports), keys(split.second, sports)) == (0, 1)
    assert split.second.execute_command("FT.INFO", sports)  # the index was made where the data is
    with pytest.raises(Exception, match="(?i)unknown index|no such index"):
        split.default.execute_command("FT.INFO", sports)

    # reads: list, search, one memory, counts, history, export, summary, health
    listed = selectors.memory_list(scope=scope, filters=filter_from_fields(user_id="alice")).items
    assert {r.id for r in listed} == {here.id, there.id}
    found = selectors.memory_search(
        scope=scope, query="running in the morning", filters=filter_from_fields(user_id="alice", app_id="sports_portal")
    )
    assert [r.id for r in found] == [there.id]
    assert selectors.memory_get(scope=scope, memory_id=there.id).app_id == "sports_portal"
    assert selectors.memory_get(scope=scope, memory_id=here.id).app_id == "concierge_app"
    assert selectors.memory_count(scope=scope) == 2
    assert len(selectors.memory_history(scope=scope, memory_id=there.id)) == 1
    assert {r["id"] for r in selectors.memory_export(scope=scope, filters=filter_from_fields(user_id="alice"))} == {
        here.id,
        there.id,
    }
    assert bulk.app_summary(scope=scope, app_id="sports_portal")["memories"] == 1
    place = scope.app("sports_portal").place
    assert place == store.Place("second", sports)
    assert consistency_check(place=place).healthy and index_health(place=place).num_docs == 1

    # writes on an existing memory
    services.memory_update(scope=scope, memory_id=there.id, text="Alice cycles to work")
    assert split.second.hget(f"mem0:{sports}:{there.id}", "memory") == b"Alice cycles to work"

    # deletions: one memory, then a person across both stores
    services.memory_delete(scope=scope, memory_id=there.id)
    assert keys(split.second, sports) == 0
    add(scope, "sports_portal", "alice", "Alice swims on Sundays")
    result = services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="alice"))
    assert result.deleted == 2 and result.remaining == 0 and not result.deferred
    assert keys(split.default, concierge) == keys(split.second, sports) == 0


def test_the_same_collection_name_on_two_stores_stays_apart(split, add):
    """A stray copy of an app's collection on the other store (an abandoned move) is never read."""
    scope = split.admin(split.acme)
    add(scope, "sports_portal", "bob", "Bob's real memory")
    sports = split.acme_sports.collection_name
    split.default.hset(f"mem0:{sports}:stray", mapping={"memory": "stray", "user_id": "bob", "memory_id": "stray"})
    assert [r.memory for r in selectors.memory_list(scope=scope).items if r.app_id == "sports_portal"] == [
        "Bob's real memory"
    ]


def test_offboarding_an_app_on_the_second_store(split, add):
    scope = split.admin(split.acme)
    for n in range(5):
        add(scope, "sports_portal", f"u{n}", f"memory {n}")
    add(scope, "concierge_app", "u0", "stays")
    cursor = bulk.app_drop(scope=scope, app_id="sports_portal", cursor={}, progress=lambda c: None)
    assert cursor["counts"]["memories"] == 5 and cursor["counts"]["remaining"] == 0
    assert keys(split.second, split.acme_sports.collection_name) == 0
    assert keys(split.default, split.acme_concierge.collection_name) == 1


def test_the_place_follows_the_app_when_it_changes_store(split, add):
    add(split.admin(split.acme), "sports_portal", "alice", "Alice runs every morning")
    old = split.admin(split.acme).app("sports_portal").place  # a scope is built from the apps' rows
    assert old == store.Place("second", split.acme_sports.collection_name)
    before = index.mem0(old)
    App.objects.filter(pk=split.acme_sports.pk).update(store="default")
    new = split.admin(split.acme).app("sports_portal").place
    assert new == store.Place("default", old.collection)
    after = index.mem0(new)  # checked again on the new store, not believed from the old one
    assert split.default.execute_command("FT.INFO", new.collection)
    assert after is not before and after.vector_store.client is store.client(on="default")
    assert before.vector_store.client is store.client(on="second")


def test_an_app_ref_built_anywhere_reaches_its_store(split):
    """Where an app lives travels with its ref: one built by hand, with no scope ever built in this process,
    reaches the second server (before, the engines looked the collection up in a table scopes filled)."""
    ref = AppRef(
        pk=split.acme_sports.pk, app_id="sports_portal", collection=split.acme_sports.collection_name, store="second"
    )
    health = collections.app_health(app=ref, max_age=0)
    assert health.exists and health.collection == ref.collection
    assert split.second.execute_command("FT.INFO", ref.collection)
    with pytest.raises(Exception, match="(?i)unknown index|no such index"):
        split.default.execute_command("FT.INFO", ref.collection)


# --- placement --------------------------------------------------------------------------


def test_one_store_places_everything_on_default(world):
    assert store.store_names() == ["default"]
    assert {app.store for app in App.objects.all()} == {"default"}
    assert AppFactory(tenant=world.acme, app_id="new_app").store == "default"


def test_saving_an_app_chooses_no_store(world, two_stores):
    """App.save() sends nothing to any store; the service that creates apps places them."""
    app = App.objects.create(tenant=world.acme, app_id="saved_only")
    assert app.store == "" and app.app_ref().store == "default"
    assert app_create(tenant=world.acme, app_id="created").store in ("default", "second")


def test_new_apps_go_to_the_store_with_the_most_free_memory(world, two_stores, raw_valkey):
    raw_valkey.set("ballast", b"x" * 64_000_000)
    assert store.free_memory("default") < store.free_memory("second")
    assert AppFactory(tenant=world.acme, app_id="placed_one").store == "second"
    two_stores.client().set("ballast", b"x" * 128_000_000)
    assert AppFactory(tenant=world.acme, app_id="placed_two").store == "default"
    # pinned by the platform admin: no question asked
    assert AppFactory(tenant=world.acme, app_id="pinned", store="second").store == "second"


def test_an_unreachable_store_is_not_chosen(world, two_stores, settings):
    settings.MEMADMIN_STORES = {"second": two_stores.url, "down": "valkey://127.0.0.1:1"}
    assert store.free_memory("down") is None
    assert AppFactory(tenant=world.acme, app_id="placed").store in ("default", "second")
