from django.contrib import admin

from memadmin.memory.models import AuditEvent, ErasureReceipt, LegalHold


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "tenant", "actor", "action", "app_id", "user_id", "count")
    list_filter = ("action", "tenant")
    search_fields = ("actor", "user_id")

    def has_change_permission(self, request, obj=None):
        return False  # the audit log is append-only


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    """A hold with neither app nor user blocks every deletion in the tenant."""

    list_display = ("tenant", "app", "user_id", "reason", "created_by", "created_at", "released_at")
    list_filter = ("tenant", "released_at")
    search_fields = ("user_id", "reason")


@admin.register(ErasureReceipt)
class ErasureReceiptAdmin(admin.ModelAdmin):
    list_display = ("created_at", "tenant", "kind", "actor", "user_id", "memories", "purge_due_at", "purged_at")
    list_filter = ("kind", "tenant")
    search_fields = ("user_id", "actor")

    def has_add_permission(self, request):
        return False  # written by the memory service and its jobs only, and signed

    def has_change_permission(self, request, obj=None):
        return False
