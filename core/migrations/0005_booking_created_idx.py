from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built CONCURRENTLY: a plain CREATE INDEX would block every booking while it reads a
    # table of millions of rows.
    atomic = False

    dependencies = [
        ("core", "0004_refresh_token_family"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="booking",
            index=models.Index(fields=["-created_at"], name="booking_created_idx"),
        ),
    ]
