# Takes over tenants' AuditEvent and LegalHold tables with their rows: the state is created on top of
# the existing tables (tenants/0001 made them), then the tables are renamed to this app's names.
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import memadmin.memory.models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("tenants", "0002_audit_and_holds_move_to_memory")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ("actor", models.CharField(max_length=200)),
                        ("actor_kind", models.CharField(max_length=16)),
                        ("role", models.CharField(max_length=16)),
                        ("action", models.CharField(db_index=True, max_length=40)),
                        ("app_id", models.CharField(blank=True, max_length=128)),
                        ("user_id", models.CharField(blank=True, db_index=True, max_length=128)),
                        ("memory_ids", models.JSONField(blank=True, default=list)),
                        ("count", models.IntegerField(default=0)),
                        ("ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("details", models.JSONField(blank=True, default=dict)),
                        ("tenant", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="audit_events", to="tenants.tenant")),
                    ],
                    options={"ordering": ["-created_at", "-id"], "db_table": "tenants_auditevent"},
                ),
                migrations.CreateModel(
                    name="LegalHold",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("user_id", models.CharField(blank=True, max_length=128, validators=[memadmin.memory.models.validate_user_id])),
                        ("reason", models.CharField(max_length=300)),
                        ("created_by", models.CharField(max_length=200)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("released_at", models.DateTimeField(blank=True, null=True)),
                        ("app", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="legal_holds", to="tenants.app")),
                        ("tenant", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="legal_holds", to="tenants.tenant")),
                    ],
                    options={"ordering": ["-created_at"], "db_table": "tenants_legalhold"},
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="auditevent", table=None),
        migrations.AlterModelTable(name="legalhold", table=None),
    ]
