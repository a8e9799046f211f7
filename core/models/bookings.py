"""Bookings, the seats they hold and the lines they sold."""

import uuid

from django.conf import settings
from django.contrib.postgres.fields import (
    ArrayField,
)
from django.db import models
from django.db.models import Func, Q

from core import pricing, seating
from core.models.catalogue import Show, ShowPrice

# The booking acceptance order comes from this PostgreSQL sequence (created in migration
# 0001): nextval() is monotonic across every web process, unlike wall-clock timestamps.
BOOKING_SEQUENCE = "core_booking_accept_seq"


class Booking(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        # Won by a paying show's booking: the seats are taken until `hold_expires_at`.
        HELD = "held"
        CONFIRMED = "confirmed"
        FAILED = "failed"
        CANCELLED = "cancelled"
        # A hold not paid in time: final, its seats freed.
        EXPIRED = "expired"

    class FailureReason(models.TextChoices):
        SEATS_UNAVAILABLE = "seats_unavailable"
        SOLD_OUT = "sold_out"
        SHOW_STARTED = "show_started"
        SHOW_CANCELLED = "show_cancelled"
        PROCESSING_ERROR = "processing_error"
        # The user would hold more than BOOKING_MAX_SEATS_PER_USER_PER_SHOW seats of the show.
        LIMIT_EXCEEDED = "limit_exceeded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No single-column indexes on the foreign keys: the composite indexes below lead with
    # them, and every index is one more write per booking insert and decision.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings", db_index=False
    )
    show = models.ForeignKey(Show, on_delete=models.PROTECT, related_name="bookings", db_index=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # While pending: the explicitly requested seats (empty for a quantity request).
    # Once confirmed: the seats held.
    seats = ArrayField(models.CharField(max_length=4), default=list, blank=True)
    quantity = models.PositiveSmallIntegerField()
    # null, not "": the API shows `"failure_reason": null` until a booking fails.
    failure_reason = models.CharField(max_length=32, choices=FailureReason.choices, null=True, blank=True)  # noqa: DJ001
    # null when absent, so that the per-user unique constraint only covers given keys.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # A digest of the request body, to refuse an idempotency key replayed with another body.
    request_fingerprint = models.CharField(max_length=64, blank=True)
    # Acceptance order (see BOOKING_SEQUENCE): the decider works oldest first by this.
    sequence = models.BigIntegerField(
        db_default=Func(models.Value(BOOKING_SEQUENCE), function="nextval"), editable=False
    )
    decide_attempts = models.PositiveSmallIntegerField(default=0)
    # The X-Request-ID of the submission, so that the worker that decides the booking (in a
    # drain that may have been queued by another request) logs the booking's own request id.
    request_id = models.CharField(max_length=128, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Selling (all with database defaults, so that a v1 insert that names none still works).
    # Ticket counts by type ({} = every ticket adult), and the best-available preferences.
    tickets = models.JSONField(default=dict, blank=True, db_default={})
    seat_category = models.CharField(
        max_length=16, choices=ShowPrice.SeatCategory.choices, default="standard", db_default="standard"
    )
    accessible = models.BooleanField(default=False, db_default=False)
    # Written in the transaction that confirms the booking; prices are fixed then.
    reference = models.CharField(max_length=8, null=True, blank=True)  # noqa: DJ001
    total = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, null=True, blank=True)  # noqa: DJ001

    # Holds: the deadline of a held booking lives here, so that whatever process expires it
    # (core/services/holds.py) may run anywhere, late or twice. Set while held, kept after.
    hold_expires_at = models.DateTimeField(null=True, blank=True)
    # A held booking made from a waiting-list entry for freed seats, not by a request.
    offer = models.BooleanField(default=False, db_default=False)

    # Not a column: how many bookings of its show are ahead of a pending booking changes
    # with every decision, so the selectors and booking_submit count it when they read the
    # booking (None otherwise, and always None once the booking is decided).
    queue_position: int | None = None

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="booking_idempotency_key_per_user",
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="booking_quantity_positive"),
            # Short references are drawn at random: this refuses a duplicate, and the
            # decider draws again (core/services/selling.py).
            # Partial: only confirmed bookings have one, so no other booking adds an entry.
            models.UniqueConstraint(
                fields=["reference"], condition=Q(reference__isnull=False), name="booking_reference_unique"
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | Q(failure_reason__isnull=False),
                name="booking_failed_has_reason",
            ),
            # A hold without a deadline would keep its seats for ever.
            models.CheckConstraint(
                condition=~Q(status="held") | Q(hold_expires_at__isnull=False),
                name="booking_held_has_deadline",
            ),
        ]
        indexes = [
            # The decider's drain: pending bookings of one show, oldest accepted first.
            models.Index(fields=["show", "sequence"], condition=Q(status="pending"), name="booking_pending_show_idx"),
            # A user's bookings, newest first (a ?status= filter reads the same few rows).
            models.Index(fields=["user", "-created_at"], name="booking_user_created_idx"),
            models.Index(fields=["show", "status"], name="booking_show_status_idx"),
            # The admin's list, newest first, a page at a time: without it every page sorts
            # the whole table.
            models.Index(fields=["-created_at"], name="booking_created_idx"),
            # A user's pending and held bookings, counted against BOOKING_MAX_PENDING_PER_USER
            # on submit.
            models.Index(fields=["user"], condition=Q(status__in=["pending", "held"]), name="booking_open_user_idx"),
            # The hold expiry job: held bookings by deadline, and only those.
            models.Index(fields=["hold_expires_at"], condition=Q(status="held"), name="booking_held_deadline_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        """Decided: no worker changes it any more (a held one waits for its payer or its
        deadline, not for a worker)."""
        return self.status != self.Status.PENDING

    @property
    def ticket_counts(self) -> dict[str, int]:
        """Every ticket type's count; a request that gave none is all adult."""
        given = self.tickets or {pricing.ADULT: self.quantity}
        return {t: given.get(t, 0) for t in pricing.TICKET_TYPES}

    @property
    def currency_code(self) -> str:
        """The currency of `total`: the deployment's, recorded when the booking was confirmed."""
        return self.currency or settings.BOOKING_CURRENCY

    @property
    def sold_lines(self) -> list["BookingLine"]:
        """The lines of a won booking (held, confirmed, or later cancelled or expired); no
        query for any other."""
        if self.reference is None:
            return []
        return list(self.lines.all())


# The statuses that hold seats (BookedSeat rows), and those that count against a user's
# BOOKING_MAX_PENDING_PER_USER.
SEAT_HOLDING_STATUSES = (Booking.Status.HELD, Booking.Status.CONFIRMED)
OPEN_STATUSES = (Booking.Status.PENDING, Booking.Status.HELD)


class BookedSeat(models.Model):
    """A seat held by a held or confirmed booking. Cancelling or expiring deletes the row,
    freeing the seat."""

    # Indexed by the unique (show, seat_label) constraint, which leads with it.
    show = models.ForeignKey(Show, on_delete=models.PROTECT, related_name="booked_seats", db_index=False)
    seat_label = models.CharField(max_length=4)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="booked_seats")

    class Meta:
        constraints = [
            # The last line of defence: PostgreSQL refuses a second holder of a seat,
            # whatever the locks and the code above did.
            models.UniqueConstraint(fields=["show", "seat_label"], name="booked_seat_unique_per_show"),
            # One spelling per seat: "A01" or "a1" can never hold a second copy of "A1".
            models.CheckConstraint(
                condition=Q(seat_label__regex=seating.LABEL_PATTERN), name="booked_seat_label_canonical"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.show_id}:{self.seat_label}"


class BookingLine(models.Model):
    """One seat of a decided booking as sold: its category, ticket type and price, fixed
    when the booking was decided. Unlike BookedSeat (deleted when the seat is freed), lines
    stay with a cancelled booking as the record of what was sold."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="lines")
    seat_label = models.CharField(max_length=4)
    seat_category = models.CharField(max_length=16, choices=ShowPrice.SeatCategory.choices)
    ticket_type = models.CharField(max_length=16, choices=ShowPrice.TicketType.choices)
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    # The seat's ticket: a random id (never the row's id), signed into the ticket code
    # (core/tickets.py). Admission is one conditional update of `admitted_at`.
    ticket_id = models.UUIDField(
        default=uuid.uuid4, db_default=Func(function="gen_random_uuid", output_field=models.UUIDField()), editable=False
    )
    admitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["booking", "id"]
        constraints = [
            models.UniqueConstraint(fields=["booking", "seat_label"], name="booking_line_unique_seat"),
            models.UniqueConstraint(fields=["ticket_id"], name="booking_line_ticket_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="booking_line_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.booking_id}:{self.seat_label} {self.ticket_type} {self.amount}"
