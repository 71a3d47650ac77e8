# AuditEvent and LegalHold now belong to the memory service (memadmin/memory/models.py). Only Django's
# idea of the models moves here; the tables and their rows stay, and memory/0001 renames them.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent"), migrations.DeleteModel(name="LegalHold")],
            database_operations=[],
        ),
    ]
