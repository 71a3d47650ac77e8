# The two legal-hold booleans were turned into memory.LegalHold rows by memory/0002: drop them.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_audit_and_holds_move_to_memory"), ("memory", "0002_legal_hold_flags_to_rows")]

    operations = [
        migrations.RemoveField(model_name="tenant", name="legal_hold"),
        migrations.RemoveField(model_name="enduser", name="legal_hold"),
    ]
