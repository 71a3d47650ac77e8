"""A deletion stays deleted: a write that loses the race to a deletion is a 404, and brings back neither the
hash nor its text in Mem0's history (memadmin/memory/store.py GuardedValkeyDB, services.memory_update).

The deletion is run at each point of Mem0's update in turn, by wrapping the one Mem0 object's method that
marks that point (real Valkey, real Mem0, real embedder): before its read, between its read and its HSET,
between its HSET and its history row. The HTTP race with the official client is
tests/tenants/api/test_delete_update_race.py."""

import json

import pytest

from memadmin.memory import guarded, history, index, services, store
from memadmin.memory.errors import NotFound
from memadmin.memory.imports import ImportRow, memory_import_write

ERASED = "Alice's passport number is X1234567"
NEW = "Alice renewed her passport"


@pytest.fixture
def setup(world, add, raw_valkey):
    scope = world.admin(world.acme)
    record = add(scope, "concierge_app", "alice", ERASED)
    app = scope.app(record.app_id)
    key = f"{store.key_prefix(app.collection)}{record.id}"
    assert raw_valkey.exists(key)
    return scope, record, app.collection, key


def _delete(scope, record):
    result = services.memory_delete(scope=scope, memory_id=record.id, app_id=record.app_id)
    assert result.deleted == 1 and result.remaining == 0


def _history_texts(collection, memory_id):
    rows = history.history_for(collection, [memory_id])[memory_id]
    return [text for row in rows for text in (row["old_memory"], row["new_memory"]) if text]


def _assert_erased(raw_valkey, scope, record, collection, key):
    assert not raw_valkey.exists(key)
    assert _history_texts(collection, record.id) == []
    with pytest.raises(NotFound):
        services.memory_update(scope=scope, memory_id=record.id, text=NEW)
    assert not raw_valkey.exists(key)


def test_delete_between_the_read_and_the_write_of_an_update(setup, raw_valkey, monkeypatch):
    scope, record, collection, key = setup
    vector_store = index.mem0(scope.app(record.app_id).place).vector_store
    real_get = vector_store.get

    def read_then_delete(vector_id):
        found = real_get(vector_id)  # Mem0 now holds the whole record, text included
        _delete(scope, record)
        return found

    monkeypatch.setattr(vector_store, "get", read_then_delete)
    with pytest.raises(NotFound):
        services.memory_update(scope=scope, memory_id=record.id, text=NEW)
    monkeypatch.undo()
    _assert_erased(raw_valkey, scope, record, collection, key)


def test_delete_before_the_update_reads_is_not_found_not_a_key_error(setup, raw_valkey, monkeypatch):
    scope, record, collection, key = setup
    vector_store = index.mem0(scope.app(record.app_id).place).vector_store
    real_get = vector_store.get

    def delete_then_read(vector_id):
        _delete(scope, record)
        return real_get(vector_id)  # Mem0's valkey store: KeyError('Vector with ID ... not found')

    monkeypatch.setattr(vector_store, "get", delete_then_read)
    with pytest.raises(NotFound):
        services.memory_update(scope=scope, memory_id=record.id, text=NEW)
    monkeypatch.undo()
    _assert_erased(raw_valkey, scope, record, collection, key)


def test_delete_between_the_write_and_the_history_row_leaves_no_history(setup, raw_valkey, monkeypatch):
    scope, record, collection, key = setup
    db = index.mem0(scope.app(record.app_id).place).db
    real_add_history = db.add_history
    written = []

    def delete_then_add_history(memory_id, old_memory, new_memory, event, **kwargs):
        assert raw_valkey.hget(key, "memory").decode() == NEW  # the update's HSET landed
        _delete(scope, record)  # erases the history too, before Mem0's row is written
        real_add_history(memory_id, old_memory, new_memory, event, **kwargs)
        written.append((old_memory, new_memory))

    monkeypatch.setattr(db, "add_history", delete_then_add_history)
    with pytest.raises(NotFound):
        services.memory_update(scope=scope, memory_id=record.id, text=NEW)
    monkeypatch.undo()
    assert written == [(ERASED, NEW)]  # Mem0 did write its row after the erasure: memadmin removed it
    _assert_erased(raw_valkey, scope, record, collection, key)


def test_an_update_that_wins_is_kept_with_its_history(setup, raw_valkey):
    scope, record, collection, key = setup
    updated = services.memory_update(scope=scope, memory_id=record.id, text=NEW)
    assert updated.memory == NEW
    assert raw_valkey.hget(key, "memory").decode() == NEW
    assert (ERASED in _history_texts(collection, record.id)) and (NEW in _history_texts(collection, record.id))
    _delete(scope, record)
    _assert_erased(raw_valkey, scope, record, collection, key)


def test_stripping_smuggled_identity_never_recreates_a_deleted_hash(setup, raw_valkey):
    scope, record, collection, key = setup
    raw_valkey.hset(key, "metadata", json.dumps({"user_id": "mallory"}))
    raw_valkey.unlink(key)
    assert guarded.hset_existing(store.client(on=scope.app(record.app_id).store), key, {"metadata": "{}"}) is False
    assert not raw_valkey.exists(key)
    raw_valkey.hset(key, mapping={"memory_id": record.id, "metadata": "{}"})
    assert guarded.hset_existing(store.client(on=scope.app(record.app_id).store), key, {"metadata": '{"a": 1}'}) is True
    assert raw_valkey.hget(key, "metadata") == b'{"a": 1}'


def test_an_import_never_overwrites_a_stored_memory(setup, raw_valkey):
    scope, record, collection, key = setup
    rows = [
        ImportRow(id=record.id, memory="imported over it", hash="h1", user_id="alice"),
        ImportRow(id="6f1d6c1e-1b1a-4a53-9d4e-000000000001", memory="a new one", hash="h2", user_id="alice"),
    ]
    written = memory_import_write(scope=scope, app_id="concierge_app", rows=rows)
    assert (written["memories"], written["existing"]) == (1, 1)
    assert raw_valkey.hget(key, "memory").decode() == ERASED
    assert raw_valkey.hget(f"{store.key_prefix(collection)}{rows[1].id}", "memory") == b"a new one"
