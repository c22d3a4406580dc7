from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0005_organization_hours_and_privacy"),
    ]

    operations = [
        migrations.AddField(
            model_name="widgetkey",
            name="encrypted_identity_secret",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name="widgetkey",
            name="identity_secret_hint",
            field=models.CharField(blank=True, editable=False, max_length=24),
        ),
    ]
