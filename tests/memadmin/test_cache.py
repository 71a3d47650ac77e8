"""memadmin/cache.py: Django's cache and the API rate limit on the store's Valkey, and what happens when
that store is down; /healthz (database and store)."""

import threading

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from memadmin.cache import StoreCache, rate_limit_hit
from memadmin.memory.errors import StoreUnavailable
from tenants.models import TenantAPIKey
from tests.factories import two_tenant_world


def test_cache_keys_live_under_their_own_prefix_and_clear_spares_everything_else(raw_valkey):
    raw_valkey.hset("mem0:ma_acme:m1", mapping={"memory": "a memory"})
    raw_valkey.set("memadmin:celery:unacked", "a queued job")
    cache.set("counts", {"total": 3}, 60)
    assert cache.get("counts") == {"total": 3}
    assert raw_valkey.keys("memadmin:cache:*") == [b"memadmin:cache:1:counts"]
    assert raw_valkey.ttl("memadmin:cache:1:counts") > 0
    cache.clear()  # the stock backend would FLUSHDB here: every memory gone
    assert cache.get("counts") is None
    assert raw_valkey.hget("mem0:ma_acme:m1", "memory") == b"a memory"
    assert raw_valkey.get("memadmin:celery:unacked") == b"a queued job"


def test_the_store_cache_refuses_to_run_without_a_prefix():
    with pytest.raises(ImproperlyConfigured, match="KEY_PREFIX"):
        StoreCache("", {"KEY_PREFIX": ""})


def test_the_rate_limit_admits_exactly_the_limit_under_concurrency(raw_valkey):
    results = []
    barrier = threading.Barrier(10)

    def hammer():
        barrier.wait()
        for _ in range(6):
            results.append(rate_limit_hit(key="key:1", limit=20, seconds=60))

    threads = [threading.Thread(target=hammer) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(None) == 20 and len(results) == 60
    assert all(1 <= wait <= 60 for wait in results if wait is not None)
    assert rate_limit_hit(key="key:2", limit=20, seconds=60) is None  # another key, its own window
    assert raw_valkey.keys("memadmin:ratelimit*")  # on the store, under the limiter's own prefix


@pytest.fixture
def store_down(doomed_server):
    doomed_server.kill()
    return doomed_server


def test_cache_errors_are_store_unavailable(store_down):
    with pytest.raises(StoreUnavailable, match="unreachable"):
        cache.get("anything")
    with pytest.raises(StoreUnavailable):
        rate_limit_hit(key="key:1", limit=1, seconds=1)


def test_store_down_api_answers_503_never_500(db, store_down, client):
    world = two_tenant_world()
    _row, key = TenantAPIKey.objects.create_key(name="crm", tenant=world.acme)
    for headers in ({}, {"HTTP_AUTHORIZATION": f"Token {key}"}, {"HTTP_AUTHORIZATION": "Token nope.nope"}):
        response = client.get("/v1/ping/", **headers)
        assert response.status_code == 503, response.content
        assert response.json()["error"]["code"] == "store_unavailable"


def test_store_down_pages_say_so_and_sign_in_still_works(db, store_down, client):
    world = two_tenant_world()
    assert client.get("/login/").status_code == 200  # needs neither the store nor the cache
    response = client.post("/login/", {"username": "acme-admin", "password": "correct-horse-battery"})
    assert response.status_code == 302
    page = client.get(f"/t/acme/apps/{world.acme_concierge.app_id}/")
    assert page.status_code == 503 and b"memory store is unreachable" in page.content
    assert client.get("/t/acme/jobs/").status_code == 200


def test_healthz_checks_the_database_and_the_store(db, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["store"]["version"]
    assert body["store"]["writes"] == "ok" and body["store"]["persistence"]["aof_last_write_status"] == "ok"
    assert body["disk"]["free_bytes"] > 0 and body["disk"]["low"] is False
    assert client.post("/healthz").status_code == 405


def test_healthz_names_each_other_store_and_one_down_is_degraded_not_down(db, client, two_stores, settings):
    from memadmin.memory.embedded import free_port

    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["stores"] == {"second": "ok"}
    # A store that holds some apps is gone: those apps answer 503; the workers stay in rotation for the rest.
    settings.MEMADMIN_STORES = {"second": two_stores.url, "gone": f"valkey://127.0.0.1:{free_port()}"}
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["stores"] == {"second": "ok", "gone": "unreachable"}


def test_healthz_is_503_when_the_store_is_down(db, store_down, client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert {k: body[k] for k in ("status", "database", "store")} == {
        "status": "unavailable",
        "database": "ok",
        "store": "unreachable",
    }
    assert body["disk"]["free_bytes"] > 0  # the disk is read without the store


def test_healthz_is_503_when_the_database_is_down(client, tmp_path, django_db_blocker):
    with django_db_blocker.unblock():
        saved = connection.settings_dict["NAME"]
        connection.close()
        # A path that cannot be opened: the database really is unreachable for this request.
        connection.settings_dict["NAME"] = str(tmp_path / "missing-dir" / "db.sqlite3")
        try:
            response = client.get("/healthz")
        finally:
            connection.close()
            connection.settings_dict["NAME"] = saved
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["database"] == "unreachable" and body["store"]["version"]
    assert "missing-dir" not in response.content.decode()  # the reason is logged, not shown
