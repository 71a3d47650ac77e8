"""memadmin/memory/store.py (and status.store_status): Valkey stopped -> StoreUnavailable (503), never an empty
result, for every selector and service; a query that times out is an error, never a partial result."""

import pytest

from memadmin.memory import selectors, services
from memadmin.memory.errors import StoreUnavailable
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.status import store_status


def test_stopped_store_raises_store_unavailable_everywhere(world, add, doomed_server):
    scope = world.admin(world.acme)
    record = add(scope, "concierge_app", "alice", "Alice prefers aisle seats")
    assert selectors.memory_count(scope=scope) == 1

    doomed_server.kill()

    alice = filter_from_fields(user_id="alice")
    calls = {
        "list": lambda: selectors.memory_list(scope=scope, filters=alice),
        "search": lambda: selectors.memory_search(scope=scope, query="seats", filters=alice),
        "get": lambda: selectors.memory_get(scope=scope, memory_id=record.id),
        "history": lambda: selectors.memory_history(scope=scope, memory_id=record.id),
        "count": lambda: selectors.memory_count(scope=scope),
        "counts": lambda: selectors.memory_counts(scope=scope),
        "export": lambda: list(selectors.memory_export(scope=scope, filters=alice)),
        "add": lambda: add(scope, "concierge_app", "alice", "Alice likes tea"),
        "update": lambda: services.memory_update(scope=scope, memory_id=record.id, text="changed"),
        "delete": lambda: services.memory_delete(scope=scope, memory_id=record.id),
        "delete_matching": lambda: services.memory_delete_matching(scope=scope, filters=alice),
        "status": store_status,
    }
    for name, call in calls.items():
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert caught.value.status == 503, name
        assert "unreachable" in caught.value.message or "not ready" in caught.value.message, name


def test_store_down_before_first_use_raises_store_unavailable(world, doomed_server):
    doomed_server.kill()
    scope = world.admin(world.acme)
    with pytest.raises(StoreUnavailable):
        selectors.memory_list(scope=scope)
    with pytest.raises(StoreUnavailable):
        services.memory_add(scope=scope, app_id="sports_portal", messages="hello", user_id="alice")


def test_store_dies_in_the_middle_of_an_export(world, add, doomed_server):
    scope = world.admin(world.acme)
    for text in ("one", "two", "three", "four", "five"):
        add(scope, "concierge_app", "alice", text)
    export = selectors.memory_export(scope=scope, filters=filter_from_fields(user_id="alice"), batch_size=2)
    first = next(export)
    assert first["user_id"] == "alice"
    next(export)  # the rest of the first batch is already in hand
    doomed_server.kill()
    with pytest.raises(StoreUnavailable):
        list(export)


@pytest.fixture
def search_timeout_1ms(settings):
    # Every query names its TIMEOUT (MEMADMIN_QUERY_TIMEOUT_MS); 1 ms makes 100k matches overrun it.
    settings.MEMADMIN_QUERY_TIMEOUT_MS = 1


def test_a_query_that_times_out_is_an_error_not_a_partial_result(world, raw_valkey, search_timeout_1ms):
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    collection = world.acme_concierge.collection_name
    for start in range(0, 100_000, 10_000):
        pipe = raw_valkey.pipeline(transaction=False)
        for i in range(start, start + 10_000):
            pipe.hset(f"mem0:{collection}:m{i}", mapping={"memory_id": f"m{i}", "user_id": "alice", "created_at": i})
        pipe.execute()
    alice = filter_from_fields(user_id="alice")
    for call in (
        lambda: selectors.memory_count(scope=scope, filters=alice),
        lambda: selectors.memory_list(scope=scope, filters=alice),
    ):
        with pytest.raises(StoreUnavailable, match="timed out"):
            call()


def test_web_processes_load_the_embedder_at_start_and_every_collection_shares_it(world, add):
    """runserver and gunicorn import memadmin.wsgi before their first request: the embedder loads there."""
    import importlib
    import sys

    from memadmin.memory import embedders, index

    sys.modules.pop("memadmin.wsgi", None)
    importlib.import_module("memadmin.wsgi")
    assert embedders.is_warm()
    warm = embedders.embedder()
    add(world.admin(world.acme), "concierge_app", "alice", "Alice likes tea")
    add(world.admin(world.acme), "sports_portal", "alice", "Alice runs")
    for app in (world.acme_concierge, world.acme_sports):
        assert index.mem0(app.app_ref().place).embedding_model is warm  # loaded once per process


def test_a_failing_warm_up_does_not_stop_the_process(settings, caplog):
    from memadmin.memory import embedders

    settings.MEMADMIN_EMBEDDER_PROVIDER = "no-such-provider"
    old, embedders._embedder = embedders._embedder, None  # noqa: SLF001 (the test restores the process's embedder)
    try:
        embedders.warm_up()
        assert not embedders.is_warm() and "could not be loaded" in caplog.text
    finally:
        embedders._embedder = old  # noqa: SLF001


def test_mem0s_history_file_is_written_ahead_without_an_fsync_per_add(world, add):
    """Mem0's rollback-journal default made each add fsync under a lock the other workers' adds waited on."""
    import sqlite3
    from contextlib import closing

    from memadmin.memory import index, store

    add(world.admin(world.acme), "concierge_app", "alice", "Alice likes tea")
    collection = world.acme_concierge.collection_name
    connection = index.mem0(world.acme_concierge.app_ref().place).db.connection
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with closing(sqlite3.connect(store.history_db_path(collection))) as other:  # erasure's own connections
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("SELECT count(*) FROM history").fetchone()[0] == 1


def test_an_index_another_process_just_created_is_checked_and_used_not_a_500(world, add, monkeypatch):
    """Two web workers writing a new app's first memories at once: both found no index, one FT.CREATE won,
    and the other's failed with "Index already exists" (a 500 through gunicorn)."""
    from memadmin.memory import index

    place = world.acme_concierge.app_ref().place
    index.create(place)  # the other worker's
    index.forget(place)
    real_info, asked = index.info, []

    def info_read_before_theirs_landed(where):
        asked.append(where)
        return None if len(asked) == 1 else real_info(where)

    monkeypatch.setattr(index, "info", info_read_before_theirs_landed)
    index.ensure(place)
    assert len(asked) == 2  # it looked again, and checked what it found
    monkeypatch.undo()
    assert add(world.admin(world.acme), "concierge_app", "alice", "Alice likes tea").memory == "Alice likes tea"
