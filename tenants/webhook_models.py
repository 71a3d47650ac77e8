"""The tenants app's webhook models (re-exported by tenants.models): where a tenant's events go, and each
delivery's log."""

import uuid

from django.db import models
from django.utils import timezone

from memadmin.memory.models import TenantQuerySet
from tenants.flags import flag


class Webhook(models.Model):
    """Where a tenant's events are POSTed (tenants/webhooks/). Mem0's "project" is the tenant."""

    class Event(models.TextChoices):
        MEMORY_ADD = "memory_add", "Memory added"
        MEMORY_UPDATE = "memory_update", "Memory updated"
        MEMORY_DELETE = "memory_delete", "Memories deleted"
        USER_ERASED = "user.erased", "End user erased"
        APP_OFFBOARDED = "app.offboarded", "App offboarded"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=100)
    url = models.CharField(max_length=2000)
    event_types = models.JSONField(default=list)
    # Empty = every app of the tenant. A webhook made by an app-restricted key is bound to that key's apps.
    apps = models.ManyToManyField("tenants.App", blank=True, related_name="+")
    include_text = models.BooleanField(default=False, help_text="Add the memory text to memory_add/update events.")
    # The signing key ("whsec_" + base64), kept as is: it must be, to sign. Shown once (create, rotate).
    secret = models.CharField(max_length=100, editable=False)
    is_active = models.BooleanField(default=True)
    failed_deliveries = models.PositiveIntegerField(default=0)  # in a row; a success resets it
    backoff_until = models.DateTimeField(null=True, blank=True)  # a failing receiver is probed by one delivery
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self):
        return f"{self.name} -> {self.url}"


class WebhookDelivery(models.Model):
    """One event for one webhook, and how sending it went (the webhook page's delivery log). Ids and counts
    only: memory text, for webhooks that opted in, is read when sending and never stored here."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Not sent (webhook disabled or deleted)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=40, db_index=True)  # the same for every webhook the event went to
    event_type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    is_test = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveIntegerField(null=True, blank=True)  # the receiver's HTTP status
    last_error = models.CharField(max_length=300, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    is_pending = flag("state", State.PENDING)
    succeeded = flag("state", State.SUCCEEDED)
    is_failed = flag("state", State.FAILED)

    def __str__(self):
        return f"{self.event_type} to {self.webhook_id}: {self.state}"

    @property
    def is_retrying(self) -> bool:
        """Pending after a failed attempt."""
        return self.is_pending and self.attempts > 0
