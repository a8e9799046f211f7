"""Serializers of the catalogue: movies, screens with their seat categories, shows with their
prices, seat maps."""

from rest_framework import serializers

from core.models import Movie, Screen, Show
from core.pricing import TICKET_TYPES
from core.seating import CATEGORIES, MAX_ROWS, MAX_SEATS_PER_ROW
from core.selectors import MOVIE_ORDERINGS


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
            "payment_required",
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
    payment_required = serializers.BooleanField(
        required=False,
        help_text="Sell in two steps: a won booking is `held` until paid. Default: the deployment's "
        "BOOKING_PAYMENT_REQUIRED. Fixed once the show has bookings.",
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
