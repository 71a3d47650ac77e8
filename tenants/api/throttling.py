"""Per-key rate limiting: each API key (or staff user) has its own budget, settings.MEMADMIN_API_RATE.

The rate is read per request (not frozen at import like DRF's THROTTLE_RATES), so
tests and reloaded settings take effect. Counters live in Django's cache: with
several worker processes and the default local-memory cache, each process
counts on its own; configure a shared cache to make the limit global.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from tenants.models import TenantAPIKey


class KeyRateThrottle(SimpleRateThrottle):
    scope = "memadmin-api"

    def __init__(self):
        # SimpleRateThrottle parses a THROTTLE_RATES string here; our rate is already parsed in settings.
        self.history = []

    def get_rate(self):
        return settings.MEMADMIN_API_RATE

    def allow_request(self, request, view):
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.rate
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if isinstance(request.auth, TenantAPIKey):
            ident = f"key:{request.auth.pk}"
        elif request.user is not None and getattr(request.user, "pk", None) is not None:
            ident = f"user:{request.user.pk}"
        else:
            return None  # unauthenticated requests are refused before they cost anything
        return f"throttle_{self.scope}_{ident}"
