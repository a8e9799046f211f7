from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

# The booking table's new indexes are built CONCURRENTLY: a plain CREATE INDEX would block
# every booking while it reads a table of millions of rows. The unique constraint on
# `reference` is a partial unique index (only confirmed bookings have a reference), which
# Django's AddConstraint would build without CONCURRENTLY.
CREATE_REFERENCE_INDEX = (
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS booking_reference_unique ON core_booking (reference) "
    "WHERE reference IS NOT NULL"
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("core", "0006_selling"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="booking",
            index=models.Index(
                condition=models.Q(("status", "pending")), fields=["user"], name="booking_pending_user_idx"
            ),
        ),
        migrations.RunSQL(
            sql=[CREATE_REFERENCE_INDEX],
            reverse_sql=["DROP INDEX CONCURRENTLY IF EXISTS booking_reference_unique"],
            state_operations=[
                migrations.AddConstraint(
                    model_name="booking",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("reference__isnull", False)),
                        fields=("reference",),
                        name="booking_reference_unique",
                    ),
                ),
            ],
        ),
    ]
