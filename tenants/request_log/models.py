"""One row per API request made with a key (tenants/request_log/recording.py writes them)."""

import uuid

from django.db import models
from django.utils import timezone

from memadmin.memory.models import TenantQuerySet

PATH_MAX = 300


class APIRequest(models.Model):
    # A random id: the cursor of the log's pages names one, and a counter would tell a tenant how many requests
    # every other tenant makes.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    # The key's prefix and name are copied: a key deleted in Django admin leaves its requests readable.
    key = models.ForeignKey("tenants.TenantAPIKey", on_delete=models.SET_NULL, null=True, related_name="+")
    key_prefix = models.CharField(max_length=16)
    key_name = models.CharField(max_length=50)
    app_id = models.CharField(max_length=64, blank=True)  # the one app the request named or reached; "" if not one
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=PATH_MAX)  # query-string names only, never their values
    status = models.PositiveSmallIntegerField()
    latency_ms = models.FloatField()
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="apirequest_tenant_time"),
            models.Index(fields=["tenant", "key", "-created_at", "-id"], name="apirequest_key_time"),
            models.Index(fields=["tenant", "app_id", "-created_at", "-id"], name="apirequest_app_time"),
            models.Index(fields=["created_at"], name="apirequest_time"),  # the retention sweep
        ]

    def __str__(self):
        return f"{self.method} {self.path} {self.status}"

    @property
    def is_error(self) -> bool:
        return self.status >= 400

    @property
    def is_server_error(self) -> bool:
        return self.status >= 500
