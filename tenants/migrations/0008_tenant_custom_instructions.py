from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0007_apikey_name_unique")]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="custom_instructions",
            field=models.TextField(blank=True, default="", max_length=4000),
        ),
    ]
