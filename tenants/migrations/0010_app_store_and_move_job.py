# Apps live on one memory store each (docs/scaling.md): existing apps are on the only store there was, "default".

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0009_import_job"),
    ]

    operations = [
        migrations.AddField(
            model_name="app",
            name="store",
            field=models.CharField(
                blank=True,
                default="default",
                help_text="The memory store (Valkey server) holding this app: default, or a name from MEMADMIN_STORES. "
                "Leave blank on a new app to place it on the store with the most free memory; move an existing app "
                "with its page's Move action or manage.py move_app, never by editing this.",
                max_length=32,
            ),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="app",
            name="status",
            field=models.CharField(
                choices=[("active", "Active"), ("frozen", "Frozen (offboarding scheduled)"),
                         ("moving", "Moving to another memory store"), ("offboarded", "Offboarded")],
                default="active",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="job",
            name="kind",
            field=models.CharField(
                choices=[("offboard_app", "Offboard app"), ("erase_user", "Erase user"), ("export_app", "Export app"),
                         ("export_tenant", "Export tenant"), ("retention", "Retention sweep"), ("import_app", "Import into app"),
                         ("move_app", "Move app to another store")],
                max_length=20,
            ),
        ),
    ]
