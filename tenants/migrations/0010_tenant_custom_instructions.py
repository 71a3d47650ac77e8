from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0005_invitation")]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="custom_instructions",
            field=models.TextField(blank=True, default="", max_length=4000),
        ),
    ]
