"""An edit on the memory page racing the same memory's deletion, as real concurrent HTTP requests of two staff
sessions against the live server: the deletion always stands (no key, no history row with either text, search
finds neither), the edit answers 200 (it came first) or 404 with its message, and nothing answers 5xx.

The memories are written straight into Valkey in Mem0's layout, so the trials spend their time racing; the
deterministic orderings (a deletion at each point of Mem0's update) are tests/memadmin/memory/test_edits.py and
tests/memadmin/memory/test_delete_update_race.py."""

import re
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.test import Client

from memadmin.memory import history, index, selectors
from memadmin.memory.filters import filter_from_fields
from tenants.scoping import scope_for_membership
from tests.memadmin.memory.rawhash import keys_of, put_many

pytestmark = pytest.mark.django_db(transaction=True)

TRIALS = 32
AT_ONCE = 4
CALIBRATION = 4
SPREAD = 8  # the deletions start at 0, 1/8, ... 7/8 of an edit's own duration after the edit
USER = "race_user"
SECRET = "passport number X1234567"
EDITED = "renewed passport, number withheld"
LOST = "This memory was deleted while you edited it: nothing was saved, and it stays deleted."


def _session(live_server, member) -> httpx.Client:
    """A signed-in browser session of ``member`` on the live server, with its CSRF token."""
    client = Client()
    client.force_login(member.user)
    http = httpx.Client(base_url=live_server.url, cookies={"sessionid": client.cookies["sessionid"].value}, timeout=60)
    page = http.get("/t/acme/memories/")
    http.headers["X-CSRFToken"] = re.search(r'"X-CSRFToken": "([^"]+)"', page.text).group(1)
    return http


def test_an_edit_racing_a_deletion_never_brings_the_memory_back(world, live_server, raw_valkey, settings):
    collection = world.acme_concierge.collection_name
    index.ensure(world.acme_concierge.app_ref().place)
    rows = [
        {"text": f"{SECRET} #{n}", "user_id": USER if n >= CALIBRATION else "someone_else"}
        for n in range(TRIALS + CALIBRATION)
    ]
    calibration, ids = (all_ids := put_many(raw_valkey, collection, rows))[:CALIBRATION], all_ids[CALIBRATION:]
    local, sessions = threading.local(), []

    def http(member):
        key = member.pk
        if not hasattr(local, "sessions"):
            local.sessions = {}
        if key not in local.sessions:
            local.sessions[key] = _session(live_server, member)
            sessions.append(local.sessions[key])
        return local.sessions[key]

    def edit(memory_id, n, start=0.0):
        time.sleep(max(0.0, start - time.monotonic()))
        url = f"/t/acme/memories/concierge_app/{memory_id}/edit/save/"
        answer = http(world.acme_support).post(
            url, data={"text": f"{EDITED} #{n}", "metadata": "{}"}, headers={"HX-Request": "true"}
        )
        return answer.status_code, answer.text

    def delete(memory_id, start=0.0):
        time.sleep(max(0.0, start - time.monotonic()))
        url = f"/t/acme/memories/concierge_app/{memory_id}/delete/"
        answer = http(world.acme_admin).post(url, data={"confirm": "yes"}, headers={"HX-Request": "true"})
        return answer.status_code, answer.text

    outcomes = Counter()
    with ThreadPoolExecutor(max_workers=2 * AT_ONCE) as pool:
        list(pool.map(lambda m: http(m), [world.acme_support, world.acme_admin] * 2 * AT_ONCE))
        # How long an edit takes here alone (it embeds the new text): the deletions are spread across it, so they
        # land before the edit, inside it (between Mem0's read and its write, or after) and after it.
        took = []
        for n, memory_id in enumerate(calibration):
            began = time.monotonic()
            assert edit(memory_id, -1 - n)[0] == 200
            took.append(time.monotonic() - began)
        span = statistics.median(took)
        for wave in range(0, TRIALS, AT_ONCE):
            start = time.monotonic() + 0.005
            futures = [
                (
                    n,
                    pool.submit(edit, ids[n], n, start),
                    pool.submit(delete, ids[n], start + span * (n % SPREAD) / SPREAD),
                )
                for n in range(wave, min(wave + AT_ONCE, TRIALS))
            ]
            for n, edited, deleted in futures:
                (e_status, e_body), (d_status, d_body) = edited.result(), deleted.result()
                assert e_status in (200, 404), (n, e_status, e_body[:500])
                if e_status == 404:
                    assert LOST in e_body or "Memory not found." in e_body, e_body[:500]
                assert d_status == 200 and "Memory deleted, with its history." in d_body, (n, d_status, d_body[:500])
                outcomes[e_status] += 1
    for session in sessions:
        session.close()

    # Every deletion stands: no key, no Mem0 history row, nothing found by list or search, with either text.
    assert sorted(k.decode() for k in keys_of(raw_valkey, collection)) == sorted(
        f"mem0:{collection}:{m}" for m in calibration
    )
    assert {m: rows for m, rows in history.history_for(collection, ids).items() if rows} == {}
    scope = scope_for_membership(world.acme_admin)
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id=USER)) == 0
    assert (
        selectors.memory_search(scope=scope, query=EDITED, filters=filter_from_fields(user_id=USER), audit=False) == []
    )
    assert sum(outcomes.values()) == TRIALS
    print(f"\n{TRIALS} edit/delete races (an edit alone: {span * 1000:.0f} ms): edits answered {dict(outcomes)}")
