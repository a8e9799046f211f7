"""Serializers of bookings: the request (and its fast path) and the one booking body."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from rest_framework import serializers

from core.models import Booking, Payment
from core.pricing import TICKET_TYPES
from core.seating import CATEGORIES
from core.services.payments import booking_refund
from core.services.selling import REQUESTABLE_CATEGORIES


class TicketCountsSerializer(serializers.Serializer):
    adult = serializers.IntegerField(required=False, min_value=0, max_value=settings.BOOKING_MAX_SEATS)
    child = serializers.IntegerField(required=False, min_value=0, max_value=settings.BOOKING_MAX_SEATS)
    senior = serializers.IntegerField(required=False, min_value=0, max_value=settings.BOOKING_MAX_SEATS)
    student = serializers.IntegerField(required=False, min_value=0, max_value=settings.BOOKING_MAX_SEATS)

    class Meta:
        ref_name = "TicketCounts"


class BookingCreateInputSerializer(serializers.Serializer):
    show = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    # Labels are taken exactly as sent (no trimming): " A1" is not a seat, never an alias.
    seats = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False, max_length=8, allow_blank=True),
        required=False,
        max_length=100,
        help_text=f'Exact seats, e.g. ["A1", "A2"]; 1..{settings.BOOKING_MAX_SEATS}. Give this or "quantity".',
    )
    quantity = serializers.IntegerField(
        required=False,
        min_value=-(2**31),
        max_value=2**31 - 1,
        help_text=f'Number of best available seats; 1..{settings.BOOKING_MAX_SEATS}. Give this or "seats".',
    )
    # The fields take wider limits than the booking rules, so that a count out of range gets
    # the service's message (core.services.submission); the schema publishes the rules
    # (booking_api.openapi.DocumentedSchemaInspector).
    tickets = TicketCountsSerializer(
        required=False,
        help_text='Ticket counts by type, e.g. {"adult": 2, "child": 1}; they add up to the seats asked for. '
        "Default: every ticket adult.",
    )
    seat_category = serializers.ChoiceField(
        choices=REQUESTABLE_CATEGORIES,
        required=False,
        help_text='With "quantity": best available within this category (default standard).',
    )
    accessible = serializers.BooleanField(
        required=False,
        help_text='With "quantity": a wheelchair space first, then its companion seats, then seats of '
        '"seat_category", as close together as possible.',
    )
    documented_schema = {
        "seats": {"minItems": 1, "maxItems": settings.BOOKING_MAX_SEATS},
        "quantity": {"minimum": 1, "maximum": settings.BOOKING_MAX_SEATS},
    }


_BOOKING_INPUT_KEYS = frozenset({"show", "seats", "quantity"})


def _plain_label(value) -> bool:
    # What the seats' CharField accepts unchanged: a string of at most 8 characters, without
    # NUL (or any non-ASCII, which includes the surrogates it refuses).
    return type(value) is str and len(value) <= 8 and value.isascii() and "\x00" not in value


def booking_create_input(data) -> dict:
    """BookingCreateInputSerializer's validated data. A booking request of the plain shapes
    (integers as integers, seats as short ASCII strings, no other key) is checked here
    directly: building the serializer's fields costs a submission more than its insert.
    Anything else goes through the serializer, which gives the 400 and its details.
    tests/test_api_bookings.py keeps the two identical."""
    if type(data) is dict and data.keys() <= _BOOKING_INPUT_KEYS:
        show, seats, quantity = data.get("show"), data.get("seats"), data.get("quantity", 0)
        if (
            type(show) is int
            and 1 <= show <= 2**63 - 1
            and type(quantity) is int
            and -(2**31) <= quantity <= 2**31 - 1
            and (seats is None or (type(seats) is list and len(seats) <= 100 and all(map(_plain_label, seats))))
            and ("seats" not in data or seats is not None)
        ):
            return dict(data)
    serializer = BookingCreateInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class BookingLineOutputSerializer(serializers.Serializer):
    """One seat of a booking as sold, at the price fixed when the booking was decided."""

    seat = serializers.CharField(source="seat_label")
    seat_category = serializers.ChoiceField(choices=CATEGORIES)
    ticket_type = serializers.ChoiceField(choices=TICKET_TYPES)
    amount = serializers.DecimalField(max_digits=8, decimal_places=2)

    class Meta:
        ref_name = "BookingLine"


class BookingRefundOutputSerializer(serializers.Serializer):
    """Money given back for a booking (a paid booking cancelled, a payment that arrived after
    the hold expired)."""

    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    status = serializers.ChoiceField(
        choices=Payment.RefundStatus.choices,
        help_text="`pending`: decided, on its way through the provider; `refunded`: the provider has it.",
    )

    class Meta:
        ref_name = "BookingRefund"


class TicketCountsOutputSerializer(serializers.Serializer):
    """Every ticket type's count (0 when none)."""

    adult = serializers.IntegerField()
    child = serializers.IntegerField()
    senior = serializers.IntegerField()
    student = serializers.IntegerField()

    class Meta:
        ref_name = "BookingTicketCounts"


# DRF's own timestamp formatting (DATETIME_FORMAT, the current time zone), shared.
_TIMESTAMP = serializers.DateTimeField(read_only=True).to_representation

# The booking as the API shows it: every field and how it is rendered, written once. Built
# directly rather than by a ModelSerializer, which builds its fields anew on every instance:
# the polled and submitted booking is the hottest response. BookingOutputSerializer takes its
# field list (and the schema its types) from here.
BOOKING_FIELDS: dict[str, Callable[[Booking], Any]] = {
    "id": lambda booking: str(booking.id),
    "status": lambda booking: str(booking.status),
    "show": lambda booking: booking.show_id,
    "seats": lambda booking: list(booking.seats),
    "quantity": lambda booking: booking.quantity,
    "failure_reason": lambda booking: str(booking.failure_reason) if booking.failure_reason else None,
    "created_at": lambda booking: _TIMESTAMP(booking.created_at),
    "decided_at": lambda booking: _TIMESTAMP(booking.decided_at),
    "confirmed_at": lambda booking: _TIMESTAMP(booking.confirmed_at),
    "cancelled_at": lambda booking: _TIMESTAMP(booking.cancelled_at),
    "queue_position": lambda booking: booking.queue_position,
    "tickets": lambda booking: booking.ticket_counts,
    "seat_category": lambda booking: booking.seat_category,
    "accessible": lambda booking: booking.accessible,
    "reference": lambda booking: booking.reference,
    "total": lambda booking: None if booking.total is None else f"{booking.total:.2f}",
    "currency": lambda booking: booking.currency_code,
    "hold_expires_at": lambda booking: _TIMESTAMP(booking.hold_expires_at),
    "offer": lambda booking: booking.offer,
    "refund": lambda booking: _refund(booking),
    "lines": lambda booking: [
        {
            "seat": line.seat_label,
            "seat_category": line.seat_category,
            "ticket_type": line.ticket_type,
            "amount": f"{line.amount:.2f}",
        }
        for line in booking.sold_lines
    ],
}


def _refund(booking: Booking) -> dict | None:
    refund = booking_refund(booking)
    return None if refund is None else {"amount": f"{refund['amount']:.2f}", "status": str(refund["status"])}


def booking_representation(booking: Booking) -> dict:
    return {name: render(booking) for name, render in BOOKING_FIELDS.items()}


class BookingOutputSerializer(serializers.ModelSerializer):
    """The schema of a booking (drf-yasg reads the fields' types); the rendering is
    booking_representation's."""

    tickets = TicketCountsOutputSerializer(
        source="ticket_counts", read_only=True, help_text="Ticket counts by type; a request without them is all adult."
    )
    seat_category = serializers.ChoiceField(
        choices=CATEGORIES,
        read_only=True,
        help_text="The category best available was asked within (standard by default).",
    )
    reference = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="8 characters without look-alikes (no 0/O, 1/I/L); null until the booking is held or confirmed.",
    )
    total = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        read_only=True,
        allow_null=True,
        help_text="The sum of the lines, fixed when the booking was decided; null until held or confirmed.",
    )
    currency = serializers.CharField(source="currency_code", read_only=True, help_text="ISO 4217; one per deployment.")
    lines = BookingLineOutputSerializer(
        many=True,
        source="sold_lines",
        read_only=True,
        help_text="One per seat once held or confirmed; empty otherwise.",
    )
    queue_position = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        min_value=0,
        help_text="While pending: how many bookings of its show are ahead of it; null once decided.",
    )
    hold_expires_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="A held booking (a paying show) keeps its seats until then unless paid; null if never held.",
    )
    offer = serializers.BooleanField(
        read_only=True, help_text="True for a held booking offered from the show's waiting list."
    )
    refund = BookingRefundOutputSerializer(
        read_only=True,
        allow_null=True,
        help_text="The refund of a paid booking that was cancelled (or paid after its hold expired); null when none.",
    )

    class Meta:
        model = Booking
        fields = list(BOOKING_FIELDS)
        read_only_fields = fields

    def to_representation(self, instance: Booking) -> dict:
        return booking_representation(instance)


class BookingListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Booking.Status.choices, required=False)
    reference = serializers.CharField(
        required=False,
        max_length=32,
        help_text="A booking reference as a person types it (any case, spaces and dashes ignored).",
    )


class BookingPayInputSerializer(serializers.Serializer):
    payment_token = serializers.CharField(
        max_length=255,
        help_text="The payment method from the provider's client-side form. The fake provider's (development, "
        "tests): `tok_ok`, `tok_declined`, `tok_async_ok`, `tok_async_fail`.",
    )
