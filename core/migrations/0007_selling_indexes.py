from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

# The booking table's new indexes are built CONCURRENTLY: a plain CREATE INDEX would block
# every booking while it reads a table of millions of rows. The unique constraint on
# `reference` is attached to a unique index built that way (a constraint added directly
# would build its index under a lock that stops every write).
CREATE_REFERENCE_INDEX = (
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS booking_reference_unique ON core_booking (reference)"
)
ATTACH_REFERENCE_CONSTRAINT = (
    "ALTER TABLE core_booking ADD CONSTRAINT booking_reference_unique UNIQUE USING INDEX booking_reference_unique"
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
            sql=[CREATE_REFERENCE_INDEX, ATTACH_REFERENCE_CONSTRAINT],
            reverse_sql=["ALTER TABLE core_booking DROP CONSTRAINT IF EXISTS booking_reference_unique"],
            state_operations=[
                migrations.AddConstraint(
                    model_name="booking",
                    constraint=models.UniqueConstraint(fields=("reference",), name="booking_reference_unique"),
                ),
            ],
        ),
    ]
