"""memory_edit: a person corrects one memory's text and metadata (real Valkey, real Mem0, real embedder)."""

import json

import pytest

from memadmin.memory import history, index, selectors, services, store
from memadmin.memory.errors import NotFound, PermissionDenied, ValidationError
from memadmin.memory.models import AuditEvent
from memadmin.memory.validation import MAX_METADATA_BYTES, MAX_METADATA_DEPTH

OLD = "Alice prefers window seats"
NEW = "Alice prefers aisle seats on long flights"


@pytest.fixture
def memory(world, add):
    added = add(
        world.admin(world.acme),
        "concierge_app",
        "alice",
        OLD,
        agent_id="concierge",
        metadata={"source": "chat", "tier": 1},
    )
    return selectors.memory_find(scope=world.admin(world.acme), memory_id=added.id)  # as a page reads it


def _edit(scope, record, *, text=None, metadata=None):
    return services.memory_edit(
        scope=scope,
        memory_id=record.id,
        app_id=record.app_id,
        text=text if text is not None else record.memory,
        metadata=metadata if metadata is not None else record.metadata,
    )


def test_new_text_is_searchable_and_mem0_history_names_the_editor(world, memory):
    scope = world.scope(world.acme_support)
    edited, what = _edit(scope, memory, text=NEW)
    assert what == "text" and edited.memory == NEW
    assert (edited.user_id, edited.agent_id, edited.metadata) == ("alice", "concierge", {"source": "chat", "tier": 1})
    assert edited.updated_at is not None and edited.hash != memory.hash
    found = selectors.memory_search(scope=scope, query="aisle seat on a long flight", top_k=1, audit=False)
    assert [r.id for r in found] == [memory.id] and found[0].memory == NEW
    rows = history.history_for(scope.app("concierge_app").collection, [memory.id])[memory.id]
    assert [(r["event"], r["old_memory"], r["new_memory"], r["actor_id"]) for r in rows] == [
        ("ADD", None, OLD, None),
        ("UPDATE", OLD, NEW, scope.actor),
    ]
    assert world.acme_support.user.username in scope.actor


def test_metadata_is_replaced_as_a_whole_and_the_text_stays(world, memory, raw_valkey):
    scope = world.scope(world.acme_admin)
    edited, what = _edit(scope, memory, metadata={"tier": 2, "notes": ["checked"]})
    assert what == "metadata"
    assert edited.memory == OLD and edited.metadata == {"tier": 2, "notes": ["checked"]}  # "source" removed
    collection = scope.app("concierge_app").collection
    stored = json.loads(raw_valkey.hget(f"{store.key_prefix(collection)}{memory.id}", "metadata"))
    assert "actor_id" not in stored and stored["tier"] == 2 and "source" not in stored
    assert raw_valkey.hget(f"{store.key_prefix(collection)}{memory.id}", "user_id") == b"alice"
    row = history.history_for(collection, [memory.id])[memory.id][-1]
    assert (row["event"], row["old_memory"], row["new_memory"], row["actor_id"]) == ("UPDATE", OLD, OLD, scope.actor)


def test_both_at_once_and_nothing_at_all(world, memory):
    scope = world.scope(world.acme_admin)
    edited, what = _edit(scope, memory, text=NEW, metadata={})
    assert what == "text and metadata" and edited.memory == NEW and edited.metadata == {}
    again, nothing = _edit(scope, edited)
    assert nothing is None and again.memory == NEW
    assert AuditEvent.objects.filter(action="memory.edit").count() == 1


def test_the_audit_row_says_who_which_memory_and_what_never_the_text(world, memory):
    scope = world.scope(world.acme_support)
    _edit(scope, memory, text=NEW)
    event = AuditEvent.objects.get(action="memory.edit")
    assert (event.actor, event.memory_ids, event.user_id, event.app_id) == (
        scope.actor,
        [memory.id],
        "alice",
        "concierge_app",
    )
    assert event.details == {"edited": "text"}
    assert NEW not in json.dumps(event.details) and OLD not in json.dumps(event.details)


@pytest.mark.parametrize("key", ["user_id", "agent_id", "run_id", "app_id", "text_lemmatized", "hash", "memory_id"])
def test_identity_and_internal_keys_are_refused(world, memory, key):
    with pytest.raises(ValidationError, match=f"reserved keys: {key}"):
        _edit(world.scope(world.acme_admin), memory, metadata={key: "bob"})
    assert selectors.memory_find(scope=world.admin(world.acme), memory_id=memory.id).user_id == "alice"


def test_metadata_is_bounded_in_size_and_depth(world, memory):
    scope = world.scope(world.acme_admin)
    with pytest.raises(ValidationError, match="over 65536 bytes of JSON"):
        _edit(scope, memory, metadata={"blob": "x" * MAX_METADATA_BYTES})
    deep = {}
    for _ in range(MAX_METADATA_DEPTH + 1):
        deep = {"d": deep}
    with pytest.raises(ValidationError, match="deeper than"):
        _edit(scope, memory, metadata=deep)
    with pytest.raises(ValidationError, match="metadata must be a JSON object"):
        _edit(scope, memory, metadata=["a"])
    with pytest.raises(ValidationError, match="text must be non-empty"):
        _edit(scope, memory, text="   ")


def test_viewers_end_users_and_api_keys_cannot_edit(world, memory):
    for scope in (world.scope(world.acme_viewer), world.end_user(world.acme, "alice"), world.api_key(world.acme)):
        with pytest.raises(PermissionDenied):
            _edit(scope, memory, text=NEW)
    assert selectors.memory_find(scope=world.admin(world.acme), memory_id=memory.id).memory == OLD


def test_out_of_scope_is_not_found(world, memory):
    with pytest.raises(NotFound):
        _edit(world.scope(world.globex_admin), memory, text=NEW)


def test_an_edit_after_a_deletion_is_a_404_and_brings_nothing_back(world, memory, raw_valkey, monkeypatch):
    """The deletion lands between Mem0's read and its write of the edit: the memory stays deleted."""
    scope = world.scope(world.acme_admin)
    place = scope.app("concierge_app").place
    collection = place.collection
    vector_store = index.mem0(place).vector_store
    real_get = vector_store.get

    def read_then_delete(vector_id):
        found = real_get(vector_id)
        services.memory_delete(scope=scope, memory_id=memory.id, app_id=memory.app_id)
        return found

    monkeypatch.setattr(vector_store, "get", read_then_delete)
    with pytest.raises(NotFound):
        _edit(scope, memory, text=NEW)
    assert not raw_valkey.exists(f"{store.key_prefix(collection)}{memory.id}")
    assert history.history_for(collection, [memory.id])[memory.id] == []
    assert not AuditEvent.objects.filter(action="memory.edit").exists()
