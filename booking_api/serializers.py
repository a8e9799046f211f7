"""Input and output serializers. Names are globally unique because drf-yasg names its
schemas after the class."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from rest_framework import serializers

from core.models import Booking, Movie, Screen, Show
from core.pricing import TICKET_TYPES
from core.seating import CATEGORIES, MAX_ROWS, MAX_SEATS_PER_ROW
from core.selectors import MOVIE_ORDERINGS
from core.services.selling import REQUESTABLE_CATEGORIES

# ---- Errors (documentation only) -------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable message.")
    # Free-form: field names map to lists of messages (nested for nested fields), and other
    # errors put what they need here ({"dependency": "database"}, {"booking": "<id>"}).
    details = serializers.JSONField(help_text="Field errors for validation failures; otherwise empty.")


# ---- Auth ------------------------------------------------------------------------------


class SignupInputSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)


class UserOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()


class MeOutputSerializer(UserOutputSerializer):
    is_staff = serializers.BooleanField()


def me_representation(user) -> dict:
    """What MeOutputSerializer renders, built directly (GET /auth/me is the cheapest
    authenticated route; a serializer costs it more than its query). tests/test_api_auth.py
    keeps the two identical."""
    return {"id": user.id, "username": user.username, "email": user.email, "is_staff": user.is_staff}


class LoginInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenPairOutputSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


# ---- Catalogue -------------------------------------------------------------------------


class MovieOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Movie
        fields = ["id", "title", "description", "duration_minutes", "genre", "language", "rating", "release_date"]


class MovieInputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Movie
        fields = list(Movie.EDITABLE_FIELDS)


class MovieListQuerySerializer(serializers.Serializer):
    # Blank means no filter, as an absent parameter does ("?search=" already did; "?search= " did not).
    search = serializers.CharField(required=False, allow_blank=True, max_length=200)
    genre = serializers.CharField(required=False, allow_blank=True, max_length=50)
    language = serializers.CharField(required=False, allow_blank=True, max_length=50)
    ordering = serializers.ChoiceField(choices=sorted(MOVIE_ORDERINGS), required=False)


def _labels(help_text: str, max_length: int = 4) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(trim_whitespace=False, max_length=max_length),
        required=False,
        max_length=MAX_ROWS * MAX_SEATS_PER_ROW,
        help_text=help_text,
    )


class ScreenInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    rows = serializers.IntegerField(min_value=1, max_value=MAX_ROWS)
    seats_per_row = serializers.IntegerField(min_value=1, max_value=MAX_SEATS_PER_ROW)
    premium_rows = _labels('Row letters whose seats are `premium`, e.g. ["H", "J"].', max_length=1)
    accessible_seats = _labels('Wheelchair spaces (`accessible`), e.g. ["A1", "A2"].')
    companion_seats = _labels('Companion seats, sold only with a wheelchair space, e.g. ["A3", "A4"].')


class ScreenOutputSerializer(serializers.ModelSerializer):
    total_seats = serializers.IntegerField()

    class Meta:
        model = Screen
        fields = [
            "id",
            "name",
            "rows",
            "seats_per_row",
            "total_seats",
            "premium_rows",
            "accessible_seats",
            "companion_seats",
        ]


class ScreenRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Screen
        fields = ["id", "name"]


class ShowPriceSerializer(serializers.Serializer):
    """One (ticket type, seat category) price of a show."""

    ticket_type = serializers.ChoiceField(choices=TICKET_TYPES)
    seat_category = serializers.ChoiceField(choices=CATEGORIES)
    amount = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=0)

    class Meta:
        ref_name = "ShowPrice"


class ShowOutputSerializer(serializers.ModelSerializer):
    screen = ScreenRefSerializer()
    total_seats = serializers.IntegerField()
    available_seats = serializers.IntegerField()
    prices = ShowPriceSerializer(
        many=True,
        source="price_grid",
        read_only=True,
        help_text="Every (ticket_type, seat_category) pair's price: the show's explicit prices, the "
        "others by the fallback (`price` for adult/standard, plus the premium surcharge on premium seats).",
    )
    currency = serializers.CharField(read_only=True, help_text="ISO 4217; one per deployment.")

    class Meta:
        model = Show
        fields = [
            "id",
            "movie",
            "screen",
            "starts_at",
            "ends_at",
            "price",
            "status",
            "total_seats",
            "available_seats",
            "prices",
            "currency",
        ]


class ShowInputSerializer(serializers.Serializer):
    movie = serializers.PrimaryKeyRelatedField(queryset=Movie.objects.all())
    screen = serializers.PrimaryKeyRelatedField(queryset=Screen.objects.all())
    starts_at = serializers.DateTimeField()
    price = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=0, help_text="An adult ticket on a standard seat."
    )
    prices = ShowPriceSerializer(
        many=True,
        required=False,
        help_text="Explicit prices per (ticket_type, seat_category); replaces the show's list when given. "
        "A pair not listed falls back to `price` (plus the premium surcharge on premium seats).",
    )


class ShowUpdateInputSerializer(ShowInputSerializer):
    status = serializers.ChoiceField(choices=Show.Status.choices)


class ShowListQuerySerializer(serializers.Serializer):
    date = serializers.DateField(required=False, help_text="A day (YYYY-MM-DD) in the server's TIME_ZONE.")


class ShowListFilterSerializer(ShowListQuerySerializer):
    movie = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    screen = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class SeatSerializer(serializers.Serializer):
    label = serializers.CharField()
    row = serializers.CharField()
    number = serializers.IntegerField()
    available = serializers.BooleanField()
    category = serializers.ChoiceField(choices=CATEGORIES)


class SeatMapOutputSerializer(serializers.Serializer):
    show = serializers.IntegerField()
    total = serializers.IntegerField()
    available = serializers.IntegerField()
    seats = SeatSerializer(many=True)


# ---- Bookings --------------------------------------------------------------------------


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
        help_text="8 characters without look-alikes (no 0/O, 1/I/L); null until the booking is confirmed.",
    )
    total = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        read_only=True,
        allow_null=True,
        help_text="The sum of the lines, fixed when the booking was confirmed; null unless confirmed.",
    )
    currency = serializers.CharField(source="currency_code", read_only=True, help_text="ISO 4217; one per deployment.")
    lines = BookingLineOutputSerializer(
        many=True, source="sold_lines", read_only=True, help_text="One per seat once confirmed; empty otherwise."
    )
    queue_position = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        min_value=0,
        help_text="While pending: how many bookings of its show are ahead of it; null once decided.",
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
