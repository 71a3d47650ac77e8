"""A random public id per audit event (the events feed, an async add's answer). Existing rows get theirs in
batches before the column becomes unique (a callable default would give every old row the same value)."""

import uuid

from django.db import migrations, models

BATCH = 2000


def fill(apps, schema_editor):
    AuditEvent = apps.get_model("memory", "AuditEvent")
    while True:
        rows = list(AuditEvent.objects.filter(event_id__isnull=True).only("pk")[:BATCH])
        if not rows:
            return
        for row in rows:
            row.event_id = uuid.uuid4()
        AuditEvent.objects.bulk_update(rows, ["event_id"])


class Migration(migrations.Migration):
    dependencies = [("memory", "0002_legal_hold_flags_to_rows")]

    operations = [
        migrations.AddField(model_name="auditevent", name="event_id", field=models.UUIDField(null=True, editable=False)),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="event_id",
            field=models.UUIDField(default=uuid.uuid4, unique=True, editable=False),
        ),
    ]
