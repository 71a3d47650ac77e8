"""End users and agents as the tenant knows them: first/last seen, fed by what the memory service wrote.

The memory service returns records carrying user_id/agent_id/app_id; keeping the books about people is
this app's business, so the service never writes tenants' tables."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.utils import timezone

from memadmin.memory.records import MemoryRecord
from memadmin.memory.scope import Scope
from tenants.models import Agent, EndUser

# "Last seen" is for humans ("2 minutes ago"): an agent adding a memory a second must not cost a write each.
SEEN_GRANULARITY = timedelta(minutes=1)


def entities_touch(*, scope: Scope, records: Iterable[MemoryRecord]) -> None:
    """Record that the users and agents of these freshly written records were seen now."""
    now = timezone.now()
    records = [record for record in records if record.user_id]
    for user_id in {record.user_id for record in records}:
        end_user, created = EndUser.objects.get_or_create(
            tenant_id=scope.tenant_id, user_id=user_id, defaults={"first_seen": now, "last_seen": now}
        )
        if not created and end_user.erased_at is not None:  # back after an erasure: seen again
            EndUser.objects.filter(pk=end_user.pk).update(last_seen=now, erased_at=None)
        elif not created and (end_user.last_seen is None or now - end_user.last_seen >= SEEN_GRANULARITY):
            EndUser.objects.filter(pk=end_user.pk).update(last_seen=now)
    for app_id, agent_id in {(record.app_id, record.agent_id) for record in records if record.agent_id}:
        app = scope.app(app_id)
        if app is not None:
            Agent.objects.get_or_create(app_id=app.pk, agent_id=agent_id)


def end_user_erased(*, scope: Scope, user_id: str) -> None:
    """All of this person's memories were deleted, verified: they leave the list of people recently seen."""
    EndUser.objects.filter(tenant_id=scope.tenant_id, user_id=user_id).update(erased_at=timezone.now())
