"""The monitor's count-first pass (memadmin/memory/consistency.py): a clean app is proven by counts alone (no
FT.SEARCH), and anything the counts cannot vouch for (a missed hash, churn during a resumable pass) falls back
to the key-by-key membership pass, which finds and repairs what is missing."""
# ruff: noqa: F811  (pytest fixtures imported by name are used as arguments)

import pytest

from memadmin.memory import consistency, index, index_queries
from tests.memadmin.memory.rawhash import put

# The jobs world (apps filled with raw Mem0-layout memories by the bench loader), not this folder's own.
from tests.support.jobs import job_files, load, world  # noqa: F401 - fixtures


def ft_search_calls(raw_valkey) -> int:
    stats = {k.lower(): v for k, v in raw_valkey.info("commandstats").items()}
    return int(stats.get("cmdstat_ft.search", {}).get("calls", 0))


def miss_one(raw_valkey, collection: str) -> str:
    """A hash the index silently missed (mem0 #3948): written while the index was gone, which then came
    back without reading the keys already there (SKIPINITIALSCAN)."""
    raw_valkey.execute_command("FT.DROPINDEX", collection)
    memory_id = put(raw_valkey, collection, user_id="missed")
    command = index.schema(collection, algorithm="flat")
    at = command.index("SCHEMA")
    raw_valkey.execute_command(*command[:at], "SKIPINITIALSCAN", *command[at:])
    return memory_id


def test_a_clean_app_is_proven_by_counts_without_a_single_membership_lookup(world, load, raw_valkey):
    load(world.concierge, 300)
    before = ft_search_calls(raw_valkey)
    health = consistency.consistency_check(place=world.concierge.app_ref().place)
    assert health.healthy and health.mode == "count" and health.fallback is None
    assert (health.keys, health.num_docs, health.missing, health.drift) == (300, 300, 0, 0)
    assert ft_search_calls(raw_valkey) == before


def test_a_missed_hash_makes_the_pass_fall_back_to_membership_and_it_is_repaired(world, load, raw_valkey):
    collection = world.concierge.collection_name
    place = world.concierge.app_ref().place
    index.ensure(place)
    memory_id = miss_one(raw_valkey, collection)
    load(world.concierge, 100)  # written after the index is back: indexed
    before = ft_search_calls(raw_valkey)
    health = consistency.consistency_check(place=place)
    assert health.mode == "membership" and health.fallback == "101 keys under the prefix, 100 documents"
    assert health.healthy and (health.keys, health.repaired, health.missing) == (101, 1, 0)
    assert ft_search_calls(raw_valkey) > before
    assert index_queries.held(place, [memory_id]) == {memory_id}


def test_an_update_between_steps_of_a_pass_forces_the_membership_pass(world, load, raw_valkey):
    collection = world.concierge.collection_name
    place = world.concierge.app_ref().place
    load(world.concierge, 300)
    health = consistency.consistency_step(place=place, budget_seconds=0, batch_size=20)
    assert health.running
    # Same keys, same number of documents: only the index's document-id counter shows the write.
    some_key = next(raw_valkey.scan_iter(match=f"mem0:{collection}:*"))
    raw_valkey.hset(some_key, "memory", "edited while the monitor walked")
    health = consistency.consistency_step(place=place, budget_seconds=60)
    assert not health.running and health.healthy and health.keys == 300
    assert health.mode == "membership" and health.fallback == "the index changed during the pass"


def test_a_delete_and_an_add_cannot_mask_a_missed_hash(world, load, raw_valkey):
    """The counts alone could cancel out (one indexed key gone, one added, one missed hash present
    throughout): the document-id counter is what rules it out."""
    collection = world.concierge.collection_name
    place = world.concierge.app_ref().place
    index.ensure(place)
    miss_one(raw_valkey, collection)
    load(world.concierge, 200)
    health = consistency.consistency_step(place=place, budget_seconds=0, batch_size=20)
    assert health.running
    raw_valkey.delete(
        next(
            k for k in raw_valkey.scan_iter(match=f"mem0:{collection}:*") if raw_valkey.hget(k, "user_id") != b"missed"
        )
    )
    put(raw_valkey, collection, user_id="newcomer")
    health = consistency.consistency_step(place=place, budget_seconds=60)
    assert health.mode == "membership" and health.fallback == "the index changed during the pass"
    assert health.healthy and (health.keys, health.repaired, health.missing) == (201, 1, 0)


def test_a_rename_inside_the_prefix_during_a_pass_forces_the_membership_pass(world, load, raw_valkey):
    """A RENAME inside the prefix moves a document to a new key without touching the index's counters,
    and SCAN may see neither name: the server's command counters catch it."""
    collection = world.concierge.collection_name
    place = world.concierge.app_ref().place
    load(world.concierge, 100)
    consistency.consistency_step(place=place, budget_seconds=0, batch_size=20)
    key = next(raw_valkey.scan_iter(match=f"mem0:{collection}:*")).decode()
    raw_valkey.rename(key, key[:-4] + "beef")
    health = consistency.consistency_step(place=place, budget_seconds=60)
    assert health.mode == "membership" and health.fallback == "a rename or index command ran during the pass"
    assert health.keys == 100


def refused(raw_valkey, collection: str, n: int) -> list[str]:
    """n hashes the index refuses (a vector of the wrong dimension): each one is an indexing failure."""
    return [put(raw_valkey, collection, user_id="refused", embedding=b"\x00" * 12) for _ in range(n)]


@pytest.mark.parametrize("how", ["through the index layer", "by another client"])
def test_a_recreated_index_is_not_vouched_for_by_the_health_of_the_old_one(world, load, raw_valkey, how):
    """A new index's failure counter starts again from 0: a baseline measured on the old index must not let
    a hash the new one refused pass as healthy."""
    collection = world.concierge.collection_name
    place = world.concierge.app_ref().place
    load(world.concierge, 50)
    for memory_id in refused(raw_valkey, collection, 3):  # three failures, gone before the check
        raw_valkey.delete(f"mem0:{collection}:{memory_id}")
    health = consistency.consistency_check(place=place)
    assert health.healthy and health.baseline_failures == 3
    raw_valkey.execute_command("FT.DROPINDEX", collection)
    if how == "through the index layer":  # what index_queries.ft does when the index went away behind its back
        index.forget(place)
        index.ensure(place)
    else:
        raw_valkey.execute_command(*index.schema(collection))
        index.wait_indexed(place)
    refused(raw_valkey, collection, 1)
    health = consistency.index_health(place=place, max_age=0)
    assert health.failures == 1 and not health.healthy


def test_the_walk_runs_in_a_thread_of_its_own_at_a_lower_cpu_priority():
    """The monitor yields the CPU to the requests it protects; the worker's other tasks keep their priority."""
    import os
    import threading

    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    here = priority()
    thread, niced = consistency.low_priority(lambda stop: (threading.get_native_id(), priority()))
    assert thread != threading.get_native_id() and niced == min(19, here + consistency.MONITOR_NICE)
    assert priority() == here
    with pytest.raises(ZeroDivisionError):  # an error in the walk reaches the caller
        consistency.low_priority(lambda stop: 1 / 0)
