import uuid

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

# Holds, waiting-list offers and tickets (CONTRACT "Holds, payment, tickets, admission").
# The new columns have constant defaults (no table rewrite) but for the ticket id, whose
# random default is drawn per existing line. The booking table's indexes are built
# CONCURRENTLY, as in 0007: a plain CREATE INDEX would block every booking meanwhile.
CREATE_TICKET_INDEX = (
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS booking_line_ticket_unique ON core_bookingline (ticket_id)"
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("core", "0007_selling_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="show",
            name="payment_required",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="booking",
            name="hold_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="booking",
            name="offer",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="bookingline",
            name="admitted_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="bookingline",
            name="ticket_id",
            field=models.UUIDField(
                db_default=models.Func(function="gen_random_uuid", output_field=models.UUIDField()),
                default=uuid.uuid4,
                editable=False,
            ),
        ),
        migrations.AlterField(
            model_name="booking",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("held", "Held"),
                    ("confirmed", "Confirmed"),
                    ("failed", "Failed"),
                    ("cancelled", "Cancelled"),
                    ("expired", "Expired"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="booking",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "held"), _negated=True), ("hold_expires_at__isnull", False), _connector="OR"
                ),
                name="booking_held_has_deadline",
            ),
        ),
        AddIndexConcurrently(
            model_name="booking",
            index=models.Index(
                condition=models.Q(("status__in", ["pending", "held"])), fields=["user"], name="booking_open_user_idx"
            ),
        ),
        RemoveIndexConcurrently(model_name="booking", name="booking_pending_user_idx"),
        AddIndexConcurrently(
            model_name="booking",
            index=models.Index(
                condition=models.Q(("status", "held")), fields=["hold_expires_at"], name="booking_held_deadline_idx"
            ),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=[CREATE_TICKET_INDEX],
                    reverse_sql=["DROP INDEX CONCURRENTLY IF EXISTS booking_line_ticket_unique"],
                )
            ],
            state_operations=[
                migrations.AddConstraint(
                    model_name="bookingline",
                    constraint=models.UniqueConstraint(fields=("ticket_id",), name="booking_line_ticket_unique"),
                )
            ],
        ),
    ]
