from django.apps import AppConfig


class MemadminConfig(AppConfig):
    name = "memadmin"
    verbose_name = "memadmin core"

    def ready(self):
        from memadmin import redact

        redact.install()
