"""What you write is what you read, through the official mem0.MemoryClient against a live server."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

METADATA = {"topic": "food", "priority": 2, "tags": ["diet", "health"], "nested": {"source": "chat"}}
TIMES = ("created_at", "updated_at")


def test_metadata_reads_back_as_sent(live_world, memory_client):
    """Mem0 puts each message's role (and name) into the memory's metadata; the caller never sent it."""
    client = memory_client(live_world.acme_key)
    added = client.add(
        [
            {"role": "user", "content": "I am vegetarian and allergic to peanuts."},
            {"role": "assistant", "content": "Noted, no meat and no peanuts.", "name": "chef_bot"},
        ],
        user_id="u_alice",
        metadata=METADATA,
    )["results"]
    assert len(added) == 2 and all(m["metadata"] == METADATA for m in added)
    for memory in added:
        assert client.get(memory["id"])["metadata"] == METADATA
    listed = client.get_all(filters={"user_id": "u_alice"})["results"]
    assert [m["metadata"] for m in listed] == [METADATA, METADATA]
    found = client.search("peanuts", filters={"user_id": "u_alice"})["results"]
    assert found and all(m["metadata"] == METADATA for m in found)
    # A caller's own "role" is kept, not replaced by the message's.
    own = client.add("I like tea.", user_id="u_alice", metadata={"role": "customer"})["results"][0]
    assert own["metadata"] == {"role": "customer"} == client.get(own["id"])["metadata"]
    bare = client.add("I like coffee.", user_id="u_alice")["results"][0]
    assert bare["metadata"] == {} == client.get(bare["id"])["metadata"]


def test_add_answers_the_timestamps_a_read_returns(live_world, memory_client):
    client = memory_client(live_world.acme_key)
    added = client.add("I live in Lisbon.", user_id="u_alice", metadata={"k": "v"})["results"][0]
    got = client.get(added["id"])
    assert {name: added[name] for name in TIMES} == {name: got[name] for name in TIMES}
    assert added["created_at"] == added["updated_at"] and added["created_at"].endswith("+00:00")
    assert "." not in added["created_at"]  # whole seconds, as Mem0 stores them
    assert added["hash"] == got["hash"]
    listed = client.get_all(filters={"user_id": "u_alice"})["results"][0]
    assert {name: listed[name] for name in TIMES} == {name: got[name] for name in TIMES}


def test_quick_adds_list_newest_first(live_world, memory_client):
    """Three adds in quick succession (usually within one of Mem0's whole seconds): the last one on top."""
    client = memory_client(live_world.acme_key)
    added = [client.add(f"Trip note {n}", user_id="u_alice")["results"][0]["id"] for n in range(3)]
    listed = client.get_all(filters={"user_id": "u_alice"})["results"]
    assert [m["id"] for m in listed] == added[::-1]
    paged = [client.get_all(filters={"user_id": "u_alice"}, page=n, page_size=1)["results"][0]["id"] for n in (1, 2, 3)]
    assert paged == added[::-1]
