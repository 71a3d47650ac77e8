from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memadmin.memory"
    label = "memory"
    verbose_name = "memory service"
    default_auto_field = "django.db.models.BigAutoField"
