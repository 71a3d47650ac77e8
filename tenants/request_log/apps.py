from django.apps import AppConfig


class RequestLogConfig(AppConfig):
    # An app of its own (label request_log): its model and migrations stay out of tenants/models.py.
    name = "tenants.request_log"
    label = "request_log"
    verbose_name = "API request log"
    default_auto_field = "django.db.models.BigAutoField"
