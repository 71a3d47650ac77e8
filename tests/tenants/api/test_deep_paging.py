"""Paging to the end (docs/architecture.md): 25,000 memories of one app, by API page numbers and by the dashboard's
keyset cursor, with ties on created_at: no duplicates, no gaps, exact total."""

import re

import pytest

from memadmin.memory import selectors
from tenants.scoping import scope_for_membership
from tests.memadmin.memory.rawhash import put_many
from tests.support.dashboard import login

N = 25_000


@pytest.fixture(autouse=True)
def flat_index(settings):
    """Paging reads the index's sort fields, never a vector: a FLAT index takes 25,000 documents without building
    an HNSW graph (most of the load's time otherwise), and pages exactly as an HNSW one does."""
    settings.MEMADMIN_INDEX_ALGORITHM = "flat"


def load(world, raw_valkey) -> set[str]:
    selectors.memory_count(scope=scope_for_membership(world.acme_admin))  # indexes before the hashes land
    base = 1_700_000_000
    # Seven memories share each second: page boundaries fall inside ties all the time.
    rows = [{"user_id": f"u{i % 40}", "text": f"fact {i}", "created_at": base + i // 7} for i in range(N)]
    ids = put_many(raw_valkey, world.acme_concierge.collection_name, rows, chunk=2000)
    put_many(raw_valkey, world.acme_sports.collection_name, [{"user_id": "u1", "created_at": base}] * 30)
    return set(ids)


def test_api_pages_reach_the_last_of_25000_memories(world, api, raw_valkey):
    ids = load(world, raw_valkey)
    api.as_key(world.acme_key)
    seen, page, previous_created = [], 1, None
    while True:
        response = api.post(
            f"/v3/memories/?page={page}&page_size=200", {"filters": {"app_id": "concierge_app"}}, format="json"
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["count"] == N
        for memory in body["results"]:
            created = memory["created_at"]
            assert previous_created is None or created <= previous_created, "newest first, all the way"
            previous_created = created
        seen += [m["id"] for m in body["results"]]
        if not body["next"]:
            break
        page += 1
    assert page == N // 200
    assert len(seen) == len(set(seen)) == N and set(seen) == ids

    # A jump deep into the result (no remembered boundary left) walks there and lands on the same memories.
    for key in raw_valkey.scan_iter(match="memadmin:pages:*"):
        raw_valkey.delete(key)
    response = api.post("/v3/memories/?page=100&page_size=200", {"filters": {"app_id": "concierge_app"}}, format="json")
    assert [m["id"] for m in response.json()["results"]] == seen[99 * 200 : 100 * 200]


def test_dashboard_cursor_reaches_the_last_of_25000_memories(world, client, raw_valkey):
    ids = load(world, raw_valkey)
    support = login(client, world.acme_support)
    seen, after, pages = [], None, 0
    while True:
        query = {"app": "concierge_app", "page_size": 100, **({"after": after} if after else {})}
        html = support.get("/t/acme/memories/", query, HTTP_HX_REQUEST="true").content.decode()
        assert f'<strong data-testid="total">{N}</strong>' in html
        seen += list(dict.fromkeys(re.findall(r"/memories/concierge_app/([0-9a-f-]{36})/", html)))
        pages += 1
        found = re.search(r'after=([^"&]+)"[^>]*data-testid="older"', html)
        if not found:
            break
        after = found.group(1)
    assert pages == N // 100
    assert len(seen) == len(set(seen)) == N and set(seen) == ids


def test_a_jump_far_past_the_pages_read_is_a_400_not_minutes_of_walking(world, api, raw_valkey, monkeypatch):
    """A cold jump to page 1,000,000 would walk a keyset step per page in one request; the walk is bounded
    (MAX_PAGE_WALK, 5 here instead of 1,000) and the answer says how to get there."""
    monkeypatch.setattr(selectors, "MAX_PAGE_WALK", 5)
    put_many(raw_valkey, world.acme_concierge.collection_name, [{"user_id": "u1"} for _ in range(20)])
    api.as_key(world.acme_key)

    def page(n):
        return api.post(f"/v3/memories/?page={n}&page_size=1", {"filters": {"user_id": "u1"}}, format="json")

    assert page(6).status_code == 200  # 5 steps from page 1; page 7's start is remembered
    refused = page(13)  # 6 steps from there
    assert refused.status_code == 400 and "5 pages past" in refused.json()["detail"]
    assert page(12).status_code == 200 and page(18).status_code == 200  # in jumps of at most 5: fine
    assert page(20).json()["results"] and page(21).json()["results"] == []  # past the end: empty
    assert page(1_000_000).status_code == 400
