from django.apps import AppConfig
from django.db.models.signals import post_save


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self):
        # Webhook events come from the audit rows the memory service writes where data changes (it cannot
        # call up into tenants): tenants/webhooks/events.py.
        from memadmin.memory.models import AuditEvent
        from tenants.webhooks.events import on_audit_event

        post_save.connect(on_audit_event, sender=AuditEvent, dispatch_uid="tenants.webhooks")
