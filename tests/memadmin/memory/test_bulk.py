"""memadmin/memory/bulk.py, the one deletion engine (services.memory_delete_matching runs its matching_drop in
the request; services.memory_delete and services.check_holds guard it): deletions leave nothing behind (no
keys by SCAN, no history rows, no stored chat messages), and a legal hold refuses them."""

import sqlite3
from contextlib import closing

import pytest

from memadmin.memory import bulk, history, index, selectors, services, store
from memadmin.memory.errors import Conflict, ValidationError
from memadmin.memory.filters import EVERYTHING, filter_from_fields
from memadmin.memory.models import LegalHold
from tests.memadmin.memory.rawhash import keys_of, put


def history_rows(collection, memory_ids):
    with closing(sqlite3.connect(store.history_db_path(collection))) as db:
        marks = ",".join("?" * len(memory_ids))
        return db.execute(f"SELECT COUNT(*) FROM history WHERE memory_id IN ({marks})", list(memory_ids)).fetchone()[0]


def message_scopes(collection):
    with closing(sqlite3.connect(store.history_db_path(collection))) as db:
        return [row[0] for row in db.execute("SELECT session_scope FROM messages ORDER BY session_scope")]


def save_messages(collection, **ids):
    """Store chat messages exactly as Mem0 does when it extracts memories (infer=True)."""
    from mem0.memory.main import _build_session_scope
    from mem0.memory.storage import SQLiteManager

    manager = SQLiteManager(str(store.history_db_path(collection)))
    try:
        manager.save_messages(
            [{"role": "user", "content": f"hello from {ids}"}, {"role": "assistant", "content": "noted"}],
            _build_session_scope(ids),
        )
    finally:
        manager.close()


@pytest.fixture
def alice_and_bob(world, add, raw_valkey):
    scope = world.admin(world.acme)
    collection = world.acme_concierge.collection_name
    alice = [
        add(scope, "concierge_app", "alice", "Alice prefers aisle seats", agent_id="booker", run_id="r1").id,
        add(scope, "concierge_app", "alice", "Alice is vegetarian", agent_id="booker").id,
        add(scope, "concierge_app", "alice", "Alice lives in Lyon").id,
    ]
    bob = [add(scope, "concierge_app", "bob", "Bob is vegan", agent_id="booker").id]
    services.memory_update(scope=scope, memory_id=alice[0], text="Alice prefers window seats")
    save_messages(collection, user_id="alice", agent_id="booker", run_id="r1")
    save_messages(collection, user_id="alice")
    save_messages(collection, user_id="alice", agent_id="other-agent")  # a session with no memory left
    save_messages(collection, user_id="bob", agent_id="booker")
    return scope, collection, alice, bob


@pytest.fixture
def strays(alice_and_bob, raw_valkey):
    """Hashes the index refuses (wrong vector size): only a SCAN finds them, and FT.INFO counts them."""
    collection = alice_and_bob[1]
    stray_alice = put(raw_valkey, collection, user_id="alice", embedding=b"\x00" * 12)
    stray_bob = put(raw_valkey, collection, user_id="bob", embedding=b"\x00" * 12)
    return stray_alice, stray_bob


def test_delete_matching_leaves_no_keys_history_or_messages(alice_and_bob, raw_valkey):
    scope, collection, alice, bob = alice_and_bob
    assert history_rows(collection, alice) == 4  # 3 ADD + 1 UPDATE
    progress = []

    result = services.memory_delete_matching(
        scope=scope, filters=filter_from_fields(user_id="alice"), batch_size=2, progress=progress.append
    )

    assert result.deferred is None
    assert result.deleted == 3 and result.unindexed_deleted == 0 and result.remaining == 0
    assert result.history_deleted == 4
    assert result.messages_deleted == 6
    assert result.per_app["concierge_app"]["remaining"] == 0
    assert result.indexes["concierge_app"]["healthy"] is True
    assert result.verified_at is not None
    assert progress and progress[-1] == 3
    survivors = {key.decode().rsplit(":", 1)[-1] for key in keys_of(raw_valkey, collection)}
    assert survivors == set(bob)
    assert history_rows(collection, alice) == 0
    assert history_rows(collection, bob) == 1
    assert message_scopes(collection) == ["agent_id=booker&user_id=bob"] * 2
    # The other app of the tenant had nothing of alice's and is untouched.
    assert result.per_app["sports_portal"]["memories"] == 0


def test_unhealthy_index_defers_to_the_engine_that_scans_the_app(alice_and_bob, strays, raw_valkey):
    """A count of 0 proves nothing while the index refuses hashes: the request deletes nothing and says so;
    the engine, run as the job runs it, SCANs that app's prefix and leaves none of alice's keys."""
    scope, collection, alice, bob = alice_and_bob
    stray_alice, stray_bob = strays
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="alice")) == 3  # stray unindexed

    result = services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="alice"))
    assert (result.deferred, result.deleted, result.matched) == ("index_unhealthy", 0, 3)
    assert len(keys_of(raw_valkey, collection)) == 6

    cursor = bulk.matching_drop(
        scope=scope, filters=filter_from_fields(user_id="alice"), cursor={}, progress=lambda c: None, batch_size=2
    )
    line = cursor["apps"]["concierge_app"]
    assert (line["memories"], line["unindexed"], line["remaining"], line["verification"]) == (4, 1, 0, "scan")
    assert line["history_rows"] == 4 and line["messages"] == 6
    survivors = {key.decode().rsplit(":", 1)[-1] for key in keys_of(raw_valkey, collection)}
    assert survivors == {*bob, stray_bob}
    assert history_rows(collection, alice + [stray_alice]) == 0


def test_delete_matching_by_agent_removes_only_that_agents_sessions(alice_and_bob, raw_valkey):
    scope, collection, alice, bob = alice_and_bob
    result = services.memory_delete_matching(
        scope=scope, filters=filter_from_fields(user_id="alice", agent_id="booker", app_id="concierge_app")
    )
    assert (result.deleted, result.remaining) == (2, 0)
    # Alice's memory without an agent and her session without an agent survive; bob is untouched.
    assert {r.id for r in selectors.memory_list(scope=scope).items} == {alice[2], *bob}
    assert "user_id=alice" in message_scopes(collection)
    assert "agent_id=booker&run_id=r1&user_id=alice" not in message_scopes(collection)
    assert "agent_id=booker&user_id=bob" in message_scopes(collection)


def test_delete_one_memory_removes_its_history(alice_and_bob, raw_valkey):
    scope, collection, alice, bob = alice_and_bob
    result = services.memory_delete(scope=scope, memory_id=alice[0])
    # Its ADD and UPDATE rows (memadmin unlinks the key itself: no DELETE row with the text is written).
    assert (result.deleted, result.remaining, result.history_deleted) == (1, 0, 2)
    assert not raw_valkey.exists(f"mem0:{collection}:{alice[0]}")
    assert history_rows(collection, [alice[0]]) == 0
    assert history_rows(collection, alice[1:]) == 2


def test_delete_matching_needs_a_filter(alice_and_bob, raw_valkey):
    scope, collection, *_ = alice_and_bob
    with pytest.raises(ValidationError):
        services.memory_delete_matching(scope=scope, filters=EVERYTHING)
    with pytest.raises(ValidationError):
        services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="", agent_id=None))
    assert len(keys_of(raw_valkey, collection)) == 4


def test_delete_matching_app_id_alone_empties_that_app_only(world, alice_and_bob, add, raw_valkey):
    # app_id counts as a filter (the API's delete_all(app_id=...) relies on it): that app goes, nothing else.
    scope, collection, *_ = alice_and_bob
    sports = add(scope, "sports_portal", "alice", "Alice runs")
    result = services.memory_delete_matching(scope=scope, filters=filter_from_fields(app_id="concierge_app"))
    assert result.deleted == 4 and result.remaining == 0 and set(result.per_app) == {"concierge_app"}
    assert result.messages_deleted == 8
    assert keys_of(raw_valkey, collection) == []
    assert message_scopes(collection) == []
    assert selectors.memory_get(scope=scope, memory_id=sports.id).id == sports.id


# --- legal holds -------------------------------------------------------------------


@pytest.fixture
def held(world, add):
    scope = world.admin(world.acme)
    alice = add(scope, "concierge_app", "alice", "Alice likes jazz")
    bob = add(scope, "concierge_app", "bob", "Bob likes rock")
    return scope, alice, bob


def assert_nothing_deleted(scope, *records):
    for record in records:
        assert selectors.memory_get(scope=scope, memory_id=record.id, audit=False).id == record.id


def test_legal_hold_on_user_refuses_deletion(world, held):
    scope, alice, bob = held
    LegalHold.objects.create(tenant=world.acme, user_id="alice", reason="litigation", created_by="legal")
    with pytest.raises(Conflict) as caught:
        services.memory_delete(scope=scope, memory_id=alice.id)
    assert caught.value.status == 409
    with pytest.raises(Conflict):
        services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="alice"))
    with pytest.raises(Conflict):  # not pinned to alice, but it would match her memories
        services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="*"))
    with pytest.raises(Conflict):
        services.memory_delete_matching(scope=world.end_user(world.acme, "alice"), filters=EVERYTHING)
    assert_nothing_deleted(scope, alice, bob)
    assert services.memory_delete(scope=scope, memory_id=bob.id).deleted == 1


def test_released_hold_no_longer_blocks(world, held):
    scope, alice, _ = held
    from django.utils import timezone

    LegalHold.objects.create(
        tenant=world.acme, user_id="alice", reason="over", created_by="legal", released_at=timezone.now()
    )
    assert services.memory_delete(scope=scope, memory_id=alice.id).deleted == 1


def test_user_legal_hold_is_per_tenant(world, held):
    scope, alice, bob = held
    LegalHold.objects.create(tenant=world.acme, user_id="alice", reason="subpoena", created_by="legal")
    with pytest.raises(Conflict):
        services.memory_delete(scope=scope, memory_id=alice.id)
    with pytest.raises(Conflict):
        services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="alice"))
    assert_nothing_deleted(scope, alice, bob)
    # The same user_id in another tenant is another person: not held.
    other = world.admin(world.globex)
    record = services.memory_add(scope=other, app_id="concierge_app", messages="x", user_id="alice")[0]
    assert services.memory_delete(scope=other, memory_id=record.id).deleted == 1


def test_tenant_and_app_legal_hold_refuse_deletion(world, held):
    scope, alice, bob = held
    hold = LegalHold.objects.create(tenant=world.acme, app=world.acme_concierge, reason="audit", created_by="legal")
    with pytest.raises(Conflict):
        services.memory_delete(scope=scope, memory_id=bob.id)
    with pytest.raises(Conflict):
        services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="bob"))
    hold.delete()
    LegalHold.objects.create(tenant=world.acme, reason="audit", created_by="legal")  # the whole tenant
    with pytest.raises(Conflict):
        services.memory_delete(scope=scope, memory_id=bob.id)
    with pytest.raises(Conflict):
        services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="bob"))
    assert_nothing_deleted(scope, alice, bob)


@pytest.mark.parametrize(
    "ids",
    [
        {"user_id": "alice"},
        {"user_id": "a&b=c%d", "agent_id": "x=y"},
        {"agent_id": "booker", "run_id": "r&1"},
        {"user_id": "u", "agent_id": "a", "run_id": "r"},
    ],
)
def test_session_scopes_are_built_as_mem0_builds_them(ids):
    from mem0.memory.main import _build_session_scope

    assert history.session_scope(ids.get("user_id"), ids.get("agent_id"), ids.get("run_id")) == _build_session_scope(
        ids
    )


def test_message_deletion_looks_sessions_up_by_index(alice_and_bob):
    """An erasure deletes one person's sessions through indexes: it never reads the app's other sessions."""
    _, collection, _, _ = alice_and_bob
    history.messages_count(collection)  # a connection: the indexes exist from here on
    with closing(sqlite3.connect(store.history_db_path(collection))) as db:
        for where, argument in ((f"{history.USER_PART_SQL} IN (?)", "user_id=alice"), ("session_scope IN (?)", "x")):
            plan = " ".join(
                row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN DELETE FROM messages WHERE {where}", (argument,))
            )
            assert "USING INDEX memadmin_messages_" in plan or "USING COVERING INDEX memadmin_messages_" in plan, plan
    place = store.Place(store.DEFAULT, collection)
    deleted = history.messages_delete(place, triples={("bob", "booker", None)}, user_ids={"alice"})
    assert deleted == 8 and message_scopes(collection) == []


def test_a_history_file_made_again_under_the_same_name_gets_its_lookup_indexes(alice_and_bob):
    """A file removed by hand (or restored from a backup) and made again is a new file: remembering the indexes
    per path left it without them, and every later erasure read all of the app's sessions."""
    _, collection, _, _ = alice_and_bob
    history.messages_count(collection)  # the indexes exist on the first file
    path = store.history_db_path(collection)
    index.forget(store.Place(store.DEFAULT, collection))  # Mem0's handle on the file
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE messages (id TEXT PRIMARY KEY, session_scope TEXT, role TEXT, content TEXT)")
    history.messages_count(collection)
    with closing(sqlite3.connect(path)) as db:
        names = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"memadmin_messages_scope", "memadmin_messages_user"} <= names
