from django.db import migrations, models


def rename_duplicate_active_keys(apps, schema_editor):
    """Keys made before the constraint may share a name (a reloaded create form): the older ones keep working
    and get " (2)", " (3)"... so the constraint can be added without revoking anything."""
    TenantAPIKey = apps.get_model("tenants", "TenantAPIKey")
    seen = set()
    for key in TenantAPIKey.objects.filter(revoked=False).order_by("-created"):
        base, n, name = key.name, 1, key.name
        while (key.tenant_id, name) in seen:
            n += 1
            suffix = f" ({n})"
            name = base[: 50 - len(suffix)] + suffix
        if name != key.name:
            key.name = name
            key.save(update_fields=["name"])
        seen.add((key.tenant_id, name))


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0006_webhooks"),
    ]

    operations = [
        migrations.RunPython(rename_duplicate_active_keys, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="tenantapikey",
            constraint=models.UniqueConstraint(
                condition=models.Q(("revoked", False)),
                fields=("tenant", "name"),
                name="apikey_name_unique_per_tenant",
                violation_error_message="An active key with this name already exists.",
            ),
        ),
    ]
