"""Rate limits: each API key (or staff user) has its own budget, settings.MEMADMIN_API_RATE; failed
authentication is limited per client IP and per key prefix (below).

The rate is read per request (not frozen at import like DRF's THROTTLE_RATES), so
tests and reloaded settings take effect. Everything here lives on the memory store's
Valkey (memadmin/cache.py), so the limits hold across web workers and machines; the
per-key budget is a moving window counted atomically on the server, because DRF's
read-modify-write history lets concurrent workers each admit the "last" request.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from memadmin.cache import rate_limit_hit
from memadmin.memory.models import AuditEvent
from tenants.models import TenantAPIKey

logger = logging.getLogger("memadmin.api")


class KeyRateThrottle(SimpleRateThrottle):
    scope = "memadmin-api"

    def __init__(self):
        # SimpleRateThrottle parses a THROTTLE_RATES string here; our rate is already parsed in settings.
        self.retry_after = None

    def get_rate(self):
        return settings.MEMADMIN_API_RATE

    def allow_request(self, request, view):
        rate = self.get_rate()
        key = self.get_cache_key(request, view) if rate is not None else None
        if key is None:
            return True
        self.retry_after = rate_limit_hit(key=key, limit=rate[0], seconds=rate[1])
        return self.retry_after is None

    def wait(self):
        return self.retry_after

    def get_cache_key(self, request, view):
        if isinstance(request.auth, TenantAPIKey):
            ident = f"key:{request.auth.pk}"
        elif request.user is not None and getattr(request.user, "pk", None) is not None:
            ident = f"user:{request.user.pk}"
        else:
            return None  # unauthenticated requests are refused before they cost anything
        return f"throttle_{self.scope}_{ident}"


# --- failed authentication ----------------------------------------------------------------------
# Per client IP: after MEMADMIN_API_AUTH_FAILURE_LIMIT requests that fail authentication (a wrong key, or
# none at all), that address gets 429 on the API for the cool-off, without its keys being looked at.
# Per key prefix (the public part of a key, before the "."): after MEMADMIN_API_KEY_LOCK_FAILURES wrong
# secrets, the prefix is locked for the cool-off, whatever address the guesses come from. A locked prefix
# refuses its own right key too: an attacker who knows a prefix can make that key wait, never guess it.


def _cooloff() -> int:
    return settings.MEMADMIN_API_AUTH_COOLOFF_MINUTES * 60


def auth_lock_wait(*, ip: str | None, prefix: str | None = None) -> int | None:
    """Seconds until this address (or this key prefix) may try to authenticate again; None = now.
    Both locks in one round trip to the cache: every API request asks."""
    names = [f"auth-lock:ip:{ip}" if ip else None, f"auth-lock:prefix:{prefix}" if prefix else None]
    locks = cache.get_many([name for name in names if name])
    if not locks:
        return None
    return max(1, int(max(locks.values()) - time.time()))


def _count(name: str, limit: int) -> bool:
    """Count one failure in a window that starts with the first; True when this one reaches ``limit``."""
    key = f"auth-fail:{name}"
    cache.add(key, 0, _cooloff())
    try:
        failures = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, _cooloff())
        failures = 1
    if failures < limit:
        return False
    cache.set(f"auth-lock:{name}", time.time() + _cooloff(), _cooloff())
    cache.delete(key)
    return True


def auth_failure(*, ip: str | None, prefix: str | None = None) -> None:
    """Record one failed authentication; lock the address or prefix when it reaches its limit, and audit
    the failures and the lock in the tenant that owns the prefix (an unknown prefix has no tenant: log)."""
    if ip and _count(f"ip:{ip}", settings.MEMADMIN_API_AUTH_FAILURE_LIMIT):
        logger.warning("API authentication failures from %s: locked for %d s", ip, _cooloff())
    if not prefix:
        return
    locked = _count(f"prefix:{prefix}", settings.MEMADMIN_API_KEY_LOCK_FAILURES)
    key = TenantAPIKey.objects.filter(prefix=prefix).only("tenant_id", "name").first()
    if key is None:
        return
    details = {"prefix": prefix, "name": key.name}
    _audit(key.tenant_id, "api.auth_failed", ip, details)
    if locked:
        logger.warning("API key %s locked after repeated failures (last from %s)", prefix, ip)
        _audit(key.tenant_id, "api.key_locked", ip, {**details, "minutes": settings.MEMADMIN_API_AUTH_COOLOFF_MINUTES})


def _audit(tenant_id: int, action: str, ip: str | None, details: dict) -> None:
    # No Scope exists for a caller that failed to authenticate, so the event is written here, not by the
    # memory service: the actor is whoever guessed, not the key's owner.
    AuditEvent.objects.create(
        tenant_id=tenant_id, actor="unauthenticated", actor_kind="api", role="", action=action, ip=ip, details=details
    )
