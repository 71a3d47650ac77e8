"""Index health of a tenant's apps, for the admin pages that list them (the overview's app rows): whether each
app's index can prove an erasure complete. One app's page asks the memory service for its own app directly."""

from __future__ import annotations

from memadmin.memory.collections import app_health
from memadmin.memory.errors import MemoryServiceError


def app_index_health(*, apps) -> dict:
    """Index health per app for admin pages, keyed by app pk; an unreachable store shows nothing."""
    healths = {}
    for app in apps:
        if app.is_offboarded:  # in no scope, nothing to vouch for
            continue
        try:
            healths[app.pk] = app_health(app=app.app_ref())
        except MemoryServiceError:
            return healths
    return healths
