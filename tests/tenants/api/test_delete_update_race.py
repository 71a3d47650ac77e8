"""A deletion stays deleted, under real concurrent requests of the official mem0.MemoryClient.

Each trial starts an update of one memory and, 0-20 ms later, its deletion (several trials at once, so the
server is as busy as with many agents; half the trials wait longer, see _calibrate). An update finds the
memory, embeds the new text, and Mem0 reads the record and rewrites the whole hash: before memadmin
guarded that write, a deletion that answered 200 was followed by the update's HSET, and the memory was
back with its erased text in history (4 of 464 trials), and an update whose memory went while it ran
answered 500 (KeyError from Mem0's valkey store) in 25 of 40.

Afterwards no trial's memory is alive by get, search, get_all or its raw key, no history row holds its
text, and no request answered other than 200 or (an update that lost) 404. The memories are written
straight into Valkey in Mem0's layout, as an agent using Mem0 OSS would, so the trials spend their time
racing. The deterministic orderings are tests/memadmin/memory/test_delete_update_race.py."""

import logging
import os
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from mem0 import MemoryClient
from mem0.exceptions import MemoryNotFoundError

from memadmin.memory import history, index, services
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_api_key
from tests.memadmin.memory.rawhash import keys_of, put_many

pytestmark = pytest.mark.django_db(transaction=True)

TRIALS = int(os.environ.get("MEMADMIN_RACE_TRIALS", "1000"))
AT_ONCE = 4  # trials racing at the same moment
OFFSETS_MS = range(21)  # the deletion starts this long after the update
USER = "race_user"
SECRET = "passport number X1234567"
# How each trial updates: the three API paths that end in memory_update (a metadata-only update rewrites
# the hash with the old text, which would bring the erased text itself back).
KINDS = ("text", "metadata", "batch")
CALIBRATION = 6


def _outcome(call):
    try:
        return "200", call()
    except MemoryNotFoundError:
        return "404", None
    except Exception as exc:  # a 5xx, or anything else the client raised: reported by the assertions
        return type(exc).__name__, str(exc)[:300]


def _calibrate(client: MemoryClient, ids: list[str]) -> int:
    """Milliseconds by which an update outlasts a deletion here, alone (each timed a few times, median):
    a deletion started that much later ends as the update writes. Half the trials add it to their offset,
    so the deletions land across the update's read and write as well as before them."""
    durations = {"update": [], "delete": []}
    for memory_id in ids:
        for name in ("update", "delete"):
            began = time.monotonic()
            client.update(memory_id, text="calibrating") if name == "update" else client.delete(memory_id)
            durations[name].append(time.monotonic() - began)
    update, delete = (statistics.median(durations[name][1:]) for name in ("update", "delete"))
    return max(0, round((update - delete) * 1000) - len(OFFSETS_MS) // 2)


def _stage(message: str) -> str:
    return message.split(" lost to its deletion ", 1)[1].rstrip(".").split(";")[0]


def test_deleted_memories_stay_deleted_when_updates_race_them(live_world, live_server, raw_valkey, settings, caplog):
    settings.MEMADMIN_API_RATE = None  # thousands of requests with one key
    caplog.set_level(logging.INFO, logger="memadmin.memory")
    collection = live_world.acme_concierge.collection_name
    index.ensure(live_world.acme_concierge.app_ref().place)
    rows = [{"text": f"{SECRET} #{n}", "user_id": USER} for n in range(TRIALS + CALIBRATION)]
    calibration, ids = (all_ids := put_many(raw_valkey, collection, rows))[:CALIBRATION], all_ids[CALIBRATION:]

    local, clients = threading.local(), []

    def client() -> MemoryClient:
        if not hasattr(local, "client"):
            local.client = MemoryClient(api_key=live_world.acme_key, host=live_server.url)
            clients.append(local.client)
        return local.client

    def update(n: int, start: float):
        time.sleep(max(0.0, start - time.monotonic()))
        memory_id, kind = ids[n], KINDS[n % len(KINDS)]
        if kind == "text":
            return _outcome(lambda: client().update(memory_id, text=f"renewed #{n}"))
        if kind == "metadata":
            return _outcome(lambda: client().update(memory_id, metadata={"trial": n}))
        return _outcome(lambda: client().batch_update([{"memory_id": memory_id, "text": f"renewed #{n}"}]))

    def delete(n: int, start: float):
        time.sleep(max(0.0, start - time.monotonic()))
        return _outcome(lambda: client().delete(ids[n]))

    updates, offsets_won = Counter(), Counter()
    with ThreadPoolExecutor(max_workers=2 * AT_ONCE) as pool:
        # Every worker's client is made (it pings the server) and the embedder loaded before any race.
        list(pool.map(lambda _: client(), range(8 * AT_ONCE)))
        base = _calibrate(client(), calibration)
        caplog.clear()
        began = time.monotonic()
        for wave in range(0, TRIALS, AT_ONCE):
            start = time.monotonic() + 0.005
            futures = []
            for n in range(wave, min(wave + AT_ONCE, TRIALS)):
                offset = OFFSETS_MS[n // len(KINDS) % len(OFFSETS_MS)] + (base if n % 2 else 0)
                racers = pool.submit(update, n, start), pool.submit(delete, n, start + offset / 1000)
                futures.append((n, offset, *racers))
            for n, offset, updated, deleted in futures:
                (u_status, u_body), (d_status, d_body) = updated.result(), deleted.result()
                assert u_status in ("200", "404"), (n, KINDS[n % len(KINDS)], offset, u_status, u_body)
                assert d_status == "200" and d_body.get("remaining", 0) == 0, (n, offset, d_status, d_body)
                updates[u_status] += 1
                if u_status == "200":
                    offsets_won[offset] += 1
        raced = time.monotonic() - began

        # Nothing of any trial is alive: raw keys, get_all, search, get of each id, history rows.
        assert keys_of(raw_valkey, collection) == []
        listed = client().get_all(filters={"user_id": USER})
        assert listed["results"] == [] and listed.get("count", 0) == 0
        assert client().search("passport number", filters={"user_id": USER})["results"] == []
        gets = Counter(status for status, _ in pool.map(lambda m: _outcome(lambda: client().get(m)), ids))
        assert gets == Counter({"404": TRIALS})
    rows = history.history_for(collection, all_ids)
    assert {memory_id: found for memory_id, found in rows.items() if found} == {}
    for c in clients:
        c.client.close()

    # The races were close: deletions landed inside updates that had already found their memory (each of
    # these answered 500 before, or brought the memory back), not only before the updates began.
    lost = Counter(_stage(r.getMessage()) for r in caplog.records if "lost to its deletion" in r.getMessage())
    assert sum(lost.values()) > 0, (updates, lost)
    print(
        f"\n{TRIALS} delete/update races in {raced:.1f} s (odd trials offset by {base} ms more): "
        f"updates {dict(updates)}; lost inside the update: {dict(lost)}; "
        f"updates that won, by offset in ms: {dict(sorted(offsets_won.items()))}"
    )


def test_a_batch_update_stops_with_a_404_at_a_memory_deleted_while_it_ran(world, api, raw_valkey, monkeypatch):
    """The deletion runs between Mem0's read and its write of the batch's second memory (the deterministic
    ordering of the race above, through the API): that memory stays deleted and the answer says so."""
    scope = scope_for_api_key(TenantAPIKey.objects.get(name="acme-server"))
    collection = world.acme_concierge.collection_name
    place = world.acme_concierge.app_ref().place
    index.ensure(place)
    first, second = put_many(raw_valkey, collection, [{"text": f"{SECRET} #{n}", "user_id": USER} for n in range(2)])
    vector_store = index.mem0(place).vector_store
    real_get = vector_store.get

    def read_then_delete(vector_id):
        found = real_get(vector_id)
        if vector_id == second:
            services.memory_delete(scope=scope, memory_id=second)
        return found

    monkeypatch.setattr(vector_store, "get", read_then_delete)
    response = api.as_key(world.acme_key).put(
        "/v1/batch/", {"memories": [{"memory_id": m, "text": "renewed"} for m in (first, second)]}, format="json"
    )
    assert response.status_code == 404, response.content
    assert response.json()["error"]["message"] == (
        f"Memory {second} was deleted while the batch ran: the 1 memories before it were updated, it and those "
        "after it were not."
    )
    assert raw_valkey.hget(f"mem0:{collection}:{first}", "memory") == b"renewed"
    assert not raw_valkey.exists(f"mem0:{collection}:{second}")
    assert history.history_for(collection, [second]) == {second: []}
