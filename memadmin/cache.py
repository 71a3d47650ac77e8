"""State that every web worker on every machine must share, kept on the memory store's Valkey.

Django's cache (counts reused for a minute, failed-authentication counters and locks) and the API's
rate-limit windows live here rather than in each process's memory: with N workers a per-process
limit lets a key make N times its budget, and a lock placed by one worker is unknown to the others.

The cache is Django's own Redis backend (redis-py's API, which valkey-py shares) talking through the
store's one connection pool: the same URL, password and timeouts as the memories, worked out on first
use (the embedded server's port is only known once it runs), and it follows ``store.reset()``.
Its keys carry a prefix of their own (``memadmin:cache:``), like Celery's, so they never mix with
``mem0:*``. Two things differ from the stock backend:

- ``clear()`` deletes the prefix's keys, never FLUSHDB: the memories live in the same database.
- An unreachable store raises ``StoreUnavailable``, which every view already turns into a 503 that
  says so; pages that need neither the store nor the cache (sign-in, the jobs list) keep working.
- A store that refuses writes (MISCONF on a full disk) does not stop the reads: a count is not cached and
  the rate limit is not counted meanwhile (the failed-authentication counters stay strict).
"""

from __future__ import annotations

import functools
import time

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.core.exceptions import ImproperlyConfigured
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from memadmin.memory import store
from memadmin.memory.errors import StoreRefusesWrites

RATE_PREFIX = "memadmin:ratelimit"


class StoreCacheClient(RedisCacheClient):
    def get_client(self, key=None, *, write=False):
        return store.client()


def _store_errors(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with store.store_errors():
            return method(*args, **kwargs)

    return wrapper


def _optional_write(method):
    """A cache write that only saves work (a count kept for a minute): when the store refuses writes (a full
    disk), the page is answered without it rather than turned into a 503."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            with store.store_errors():
                return method(*args, **kwargs)
        except StoreRefusesWrites:
            return False

    return wrapper


# incr and add stay strict: the failed-authentication counters and locks must not silently stop counting.
for _name in ("add", "get", "delete", "get_many", "has_key", "incr", "delete_many"):
    setattr(StoreCacheClient, _name, _store_errors(getattr(RedisCacheClient, _name)))
for _name in ("set", "touch", "set_many"):
    setattr(StoreCacheClient, _name, _optional_write(getattr(RedisCacheClient, _name)))


class StoreCache(RedisCache):
    """``CACHES["default"]``: LOCATION is ignored (the store's URL is used), KEY_PREFIX is required."""

    def __init__(self, server, params):
        super().__init__(server or [], params)
        if not self.key_prefix:
            raise ImproperlyConfigured("The store cache needs a KEY_PREFIX: clear() deletes the keys under it.")
        self._class = StoreCacheClient

    def clear(self) -> bool:
        # SCAN walks the whole server (every tenant's memories): fine for a rare administrative clear,
        # which is why nothing in a request path calls it.
        with store.store_errors():
            client = store.client()
            batch = []
            for key in client.scan_iter(match=f"{self.key_prefix}:*", count=1000):
                batch.append(key)
                if len(batch) == 1000:
                    client.unlink(*batch)
                    batch = []
            if batch:
                client.unlink(*batch)
        return True


_limiter: tuple[object, MovingWindowRateLimiter] | None = None


def _rate_limiter() -> MovingWindowRateLimiter:
    # Built once per store client (building one costs 0.5 ms, twice the hit itself), again after store.reset().
    global _limiter
    client = store.client()
    if _limiter is None or _limiter[0] is not client:
        storage = RedisStorage("valkey://", connection_pool=client.connection_pool, key_prefix=RATE_PREFIX)
        _limiter = (client, MovingWindowRateLimiter(storage))
    return _limiter[1]


def rate_limit_hit(*, key: str, limit: int, seconds: int) -> float | None:
    """Count one request against ``limit`` per ``seconds`` for ``key``: None if it is allowed, else the
    seconds to wait. A moving window, checked and recorded in one Lua script on the server (limits), so
    concurrent workers can never let more than ``limit`` through in any ``seconds``."""
    try:
        with store.store_errors():
            limiter = _rate_limiter()
            item = RateLimitItemPerSecond(limit, seconds)
            if limiter.hit(item, key):
                return None
            reset_at, _remaining = limiter.get_window_stats(item, key)
    except StoreRefusesWrites:
        # The window cannot be recorded while the store refuses writes (a full disk): then nothing can be
        # written either, and refusing the reads too would turn a full disk into a total outage.
        return None
    return max(1.0, reset_at - time.time())
