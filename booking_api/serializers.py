"""Input and output serializers. Names are globally unique because drf-yasg names its
schemas after the class."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from rest_framework import serializers

from core.models import Booking, Movie, Screen, Show
from core.seating import MAX_ROWS, MAX_SEATS_PER_ROW
from core.selectors import MOVIE_ORDERINGS

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
        fields = [
            "title",
            "description",
            "duration_minutes",
            "genre",
            "language",
            "rating",
            "release_date",
            "is_active",
        ]


class MovieListQuerySerializer(serializers.Serializer):
    # Blank means no filter, as an absent parameter does ("?search=" already did; "?search= " did not).
    search = serializers.CharField(required=False, allow_blank=True, max_length=200)
    genre = serializers.CharField(required=False, allow_blank=True, max_length=50)
    language = serializers.CharField(required=False, allow_blank=True, max_length=50)
    ordering = serializers.ChoiceField(choices=sorted(MOVIE_ORDERINGS), required=False)


class ScreenInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    rows = serializers.IntegerField(min_value=1, max_value=MAX_ROWS)
    seats_per_row = serializers.IntegerField(min_value=1, max_value=MAX_SEATS_PER_ROW)


class ScreenOutputSerializer(serializers.ModelSerializer):
    total_seats = serializers.IntegerField()

    class Meta:
        model = Screen
        fields = ["id", "name", "rows", "seats_per_row", "total_seats"]


class ScreenRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Screen
        fields = ["id", "name"]


class ShowOutputSerializer(serializers.ModelSerializer):
    screen = ScreenRefSerializer()
    total_seats = serializers.IntegerField()
    available_seats = serializers.IntegerField()

    class Meta:
        model = Show
        fields = ["id", "movie", "screen", "starts_at", "ends_at", "price", "status", "total_seats", "available_seats"]


class ShowInputSerializer(serializers.Serializer):
    movie = serializers.PrimaryKeyRelatedField(queryset=Movie.objects.all())
    screen = serializers.PrimaryKeyRelatedField(queryset=Screen.objects.all())
    starts_at = serializers.DateTimeField()
    price = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=0)


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


class SeatMapOutputSerializer(serializers.Serializer):
    show = serializers.IntegerField()
    total = serializers.IntegerField()
    available = serializers.IntegerField()
    seats = SeatSerializer(many=True)


# ---- Bookings --------------------------------------------------------------------------


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
    documented_schema = {
        "seats": {"minItems": 1, "maxItems": settings.BOOKING_MAX_SEATS},
        "quantity": {"minimum": 1, "maximum": settings.BOOKING_MAX_SEATS},
    }


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
}


def booking_representation(booking: Booking) -> dict:
    return {name: render(booking) for name, render in BOOKING_FIELDS.items()}


class BookingOutputSerializer(serializers.ModelSerializer):
    """The schema of a booking (drf-yasg reads the fields' types); the rendering is
    booking_representation's."""

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
