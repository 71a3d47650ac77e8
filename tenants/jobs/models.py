"""The Job row: one piece of long work (offboard, erase, export, retention, import, move), its state and its
resumable cursor. The row is the source of truth; Celery only delivers nudges (services.py).

It belongs to the tenants app (tenants/models.py imports it so Django registers it there): foreign keys name the
tenants' models by string, so this module never imports tenants.models."""

import uuid

from django.db import models
from django.utils import timezone

from memadmin.memory.models import TenantQuerySet
from tenants.export_formats import FORMATS as EXPORT_FORMATS
from tenants.jobs.progress import job_progress_text
from tenants.status_flags import status_flag


class Job(models.Model):
    class Kind(models.TextChoices):
        OFFBOARD_APP = "offboard_app", "Offboard app"
        ERASE_USER = "erase_user", "Erase user"
        EXPORT_APP = "export_app", "Export app"
        EXPORT_TENANT = "export_tenant", "Export tenant"
        RETENTION = "retention", "Retention sweep"
        IMPORT_APP = "import_app", "Import into app"
        MOVE_APP = "move_app", "Move app to another store"

    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATES = (State.SCHEDULED, State.RUNNING)
    TERMINAL_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED)
    DELETION_KINDS = (Kind.OFFBOARD_APP, Kind.ERASE_USER, Kind.RETENTION)
    EXPORT_FORMATS = EXPORT_FORMATS

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="jobs")
    app = models.ForeignKey("tenants.App", on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs")
    params = models.JSONField(default=dict, blank=True)  # filters, user_id, export format...
    requested_by = models.CharField(max_length=200)
    state = models.CharField(max_length=16, choices=State.choices, default=State.SCHEDULED, db_index=True)
    run_after = models.DateTimeField(default=timezone.now)
    total = models.BigIntegerField(default=0)
    done = models.BigIntegerField(default=0)
    progress = models.JSONField(default=dict, blank=True)  # resumable cursor of the running job
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    receipt = models.JSONField(null=True, blank=True)
    result_file = models.CharField(max_length=500, blank=True)
    result_expires_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    is_scheduled = status_flag("state", State.SCHEDULED)
    is_running = status_flag("state", State.RUNNING)
    is_active = status_flag("state", *ACTIVE_STATES)  # not finished yet
    is_done = status_flag("state", *TERMINAL_STATES)  # finished, however it went
    succeeded = status_flag("state", State.SUCCEEDED)
    is_failed = status_flag("state", State.FAILED)
    is_cancelled = status_flag("state", State.CANCELLED)
    is_import = status_flag("kind", Kind.IMPORT_APP)

    def __str__(self):
        return f"{self.get_kind_display()} {self.state}"

    @property
    def progress_text(self) -> str:
        return job_progress_text(self)

    @property
    def offers_cancel(self) -> bool:
        """Whether its page offers Cancel: while scheduled, or running where stopping after a batch is safe (an
        offboarding or a move cannot stop halfway; job_cancel refuses those, with the reason)."""
        return self.is_scheduled or self.is_running and self.kind not in (self.Kind.OFFBOARD_APP, self.Kind.MOVE_APP)
