"""The models of the rule the memory service enforces: who touched which memories (AuditEvent) and what
may not be deleted (LegalHold). Tenants are referenced by string so this app imports nothing from tenants."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils import timezone

from memadmin.memory.errors import ValidationError
from memadmin.memory.ids import clean_id


def validate_user_id(value: str) -> None:
    try:
        if clean_id(value, "user_id") != value:
            raise ValidationError("remove leading/trailing whitespace.")
    except ValidationError as exc:
        raise DjangoValidationError(exc.message) from None


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant) -> TenantQuerySet:
        """Every query starts from the scope: a tenant object or its primary key."""
        return self.filter(tenant_id=getattr(tenant, "pk", tenant))


class AuditEvent(models.Model):
    """Written by the memory service, so no view can forget it. Never holds memory text."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="audit_events")
    # The id the events feed and an async add's answer name: random, so it says nothing about other tenants'
    # activity (the integer pk counts everyone's events).
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=200)
    actor_kind = models.CharField(max_length=16)  # staff | api | enduser | system
    role = models.CharField(max_length=16)
    action = models.CharField(max_length=40, db_index=True)
    app_id = models.CharField(max_length=128, blank=True)
    user_id = models.CharField(max_length=128, blank=True, db_index=True)
    memory_ids = models.JSONField(default=list, blank=True)
    count = models.IntegerField(default=0)
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action}"


class AuditSubject(models.Model):
    """One end user whose memories an audit event showed, exported, sent or deleted, when the event's own
    user_id column cannot name them: a tenant-wide page of the memory browser shows many people, an
    offboarding deletes everyone of an app. A row per (event, person), indexed by (tenant, user_id), is what
    lets a person's "who looked at your data" list find those events with one index range, where a JSON
    details field could only be scanned."""

    event = models.ForeignKey(AuditEvent, on_delete=models.CASCADE, related_name="subjects")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    user_id = models.CharField(max_length=128)
    count = models.IntegerField(default=0)  # that person's memories in the event; 0 when not known

    objects = TenantQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "user_id"], name="audit_subject_person")]
        constraints = [models.UniqueConstraint(fields=["event", "user_id"], name="one_subject_row_per_event")]

    def __str__(self):
        return f"{self.user_id} in {self.event_id}"


class LegalHoldQuerySet(TenantQuerySet):
    def active(self) -> LegalHoldQuerySet:
        return self.filter(released_at__isnull=True)


class LegalHold(models.Model):
    """The one way to block deletions: of a whole tenant (no app, no user), one app, or one user."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="legal_holds")
    app = models.ForeignKey("tenants.App", on_delete=models.CASCADE, null=True, blank=True, related_name="legal_holds")
    user_id = models.CharField(max_length=128, blank=True, validators=[validate_user_id])
    reason = models.CharField(max_length=300)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    objects = LegalHoldQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        target = self.user_id or (self.app.app_id if self.app_id else "whole tenant")
        return f"hold on {target}: {self.reason}"


class ErasureReceiptQuerySet(TenantQuerySet):
    def of_app(self, app_id: str) -> ErasureReceiptQuerySet:
        return self.filter(per_app__has_key=app_id)


class ErasureReceipt(models.Model):
    """One for every erasure (a memory, a batch, a run, an agent's memories of a person, a person, an end
    user's own delete-all, retention, offboarding), written by the memory service or the job that erased, and
    signed (memadmin/memory/receipts.py). Counts and ids only, never memory text. ``body`` is exactly what was
    signed; the columns beside it are copies for filtering, and purged_at with its signed attestation is added
    once the disk purge has run."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="erasure_receipts")
    kind = models.CharField(max_length=20, db_index=True)
    status = models.CharField(max_length=16, default="complete")
    actor = models.CharField(max_length=200)
    actor_kind = models.CharField(max_length=16)  # staff | api | enduser | system
    role = models.CharField(max_length=16, blank=True)
    user_id = models.CharField(max_length=128, blank=True, db_index=True)  # the person, when one was pinned
    scope = models.JSONField(default=dict)  # the filters as data, the apps
    per_app = models.JSONField(default=dict)  # app_id -> memories, history_rows, messages, unindexed
    memories = models.IntegerField(default=0)
    verification = models.JSONField(default=dict)
    job_id = models.UUIDField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    purge_due_at = models.DateTimeField()
    purged_at = models.DateTimeField(null=True, blank=True, db_index=True)
    body = models.JSONField()
    signature = models.JSONField()
    purge_attestation = models.JSONField(null=True, blank=True)  # {"attestation": {...}, "signature": {...}}

    objects = ErasureReceiptQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.kind} by {self.actor}"

    @property
    def is_complete(self) -> bool:
        """Everything the erasure covered is gone (templates ask this rather than compare the status)."""
        return self.status == "complete"
