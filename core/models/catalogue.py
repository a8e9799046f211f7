"""What is on sale: movies, screens and their seat categories, shows and their prices."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import (
    ArrayField,
    DateTimeRangeField,
    RangeOperators,
)
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Func, Q
from django.db.models.functions import Upper

from core import pricing, seating


class Movie(models.Model):
    # What staff may set on a movie, through the API and the admin alike.
    EDITABLE_FIELDS = (
        "title",
        "description",
        "duration_minutes",
        "genre",
        "language",
        "rating",
        "release_date",
        "is_active",
    )

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    duration_minutes = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(1000)])
    genre = models.CharField(max_length=50, blank=True)
    language = models.CharField(max_length=50, blank=True)
    # Audience rating as printed on the poster (G, PG, PG-13, R, 12A, ...).
    rating = models.CharField(max_length=16, blank=True)
    release_date = models.DateField(null=True, blank=True)
    # A movie with bookings is deactivated rather than deleted: its bookings keep history.
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["title", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(duration_minutes__gte=1), name="movie_duration_positive"),
        ]
        indexes = [
            # ?search= is a case-insensitive substring match (UPPER(title) LIKE ...).
            GinIndex(OpClass(Upper("title"), name="gin_trgm_ops"), name="movie_title_trgm"),
            models.Index(fields=["genre"], name="movie_genre_idx"),
            models.Index(fields=["language"], name="movie_language_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class Screen(models.Model):
    name = models.CharField(max_length=100, unique=True)
    rows = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(seating.MAX_ROWS)])
    seats_per_row = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(seating.MAX_SEATS_PER_ROW)]
    )
    # Seat categories as arrays on the screen row: the decider and the seat map read a
    # screen whole, in the one statement that reads its layout, and a screen marks a few
    # rows and seats at most. Validated against the layout by clean() (seating.SeatCategories).
    premium_rows = ArrayField(models.CharField(max_length=1), default=list, blank=True, db_default=[])
    accessible_seats = ArrayField(models.CharField(max_length=4), default=list, blank=True, db_default=[])
    companion_seats = ArrayField(models.CharField(max_length=4), default=list, blank=True, db_default=[])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(rows__gte=1, rows__lte=seating.MAX_ROWS), name="screen_rows_range"),
            models.CheckConstraint(
                condition=Q(seats_per_row__gte=1, seats_per_row__lte=seating.MAX_SEATS_PER_ROW),
                name="screen_seats_per_row_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def total_seats(self) -> int:
        return self.rows * self.seats_per_row

    @property
    def layout(self) -> seating.Layout:
        return seating.Layout(self.rows, self.seats_per_row)

    @property
    def categories(self) -> seating.SeatCategories:
        return seating.SeatCategories.of(self.premium_rows, self.accessible_seats, self.companion_seats)

    def clean(self):
        super().clean()
        if self.rows and self.seats_per_row:
            problems = self.categories.problems(self.layout)
            if problems:
                raise ValidationError(problems)


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class Show(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        CANCELLED = "cancelled"

    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="shows")
    screen = models.ForeignKey(Screen, on_delete=models.PROTECT, related_name="shows")
    starts_at = models.DateTimeField()
    # Derived from the movie's duration by the show services; stored so that the overlap
    # constraint below can be enforced by PostgreSQL.
    ends_at = models.DateTimeField()
    price = models.DecimalField(max_digits=8, decimal_places=2)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    # A paying show sells in two steps: a won booking is `held` until paid (or it expires).
    # The API's default for a new show is BOOKING_PAYMENT_REQUIRED; the column's is off, so
    # an insert that names none (a v1 client, a migration) keeps selling as v1.
    payment_required = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="show_ends_after_start"),
            models.CheckConstraint(condition=Q(price__gte=0), name="show_price_not_negative"),
            # Two scheduled shows never overlap on one screen (needs btree_gist).
            ExclusionConstraint(
                name="show_no_overlap_per_screen",
                expressions=[
                    ("screen", RangeOperators.EQUAL),
                    (TsTzRange("starts_at", "ends_at"), RangeOperators.OVERLAPS),
                ],
                condition=Q(status="scheduled"),
            ),
        ]
        indexes = [
            models.Index(fields=["movie", "starts_at"], name="show_movie_starts_idx"),
            models.Index(fields=["starts_at"], name="show_starts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.movie} @ {self.screen} {self.starts_at:%Y-%m-%d %H:%M}"

    @staticmethod
    def end_for(*, starts_at, movie: Movie):
        return starts_at + timedelta(minutes=movie.duration_minutes)

    @property
    def currency(self) -> str:
        return settings.BOOKING_CURRENCY

    def price_list(self) -> pricing.PriceList:
        """The show's prices: its explicit ShowPrice rows over the fallback. Uses the
        `explicit_prices` annotation of core.selectors when present, else reads the rows."""
        annotated = getattr(self, "explicit_prices", None)
        if annotated is not None:
            pairs = [entry.split("|") for entry in annotated]
            explicit = {(t, c): Decimal(amount) for t, c, amount in pairs}
        else:
            explicit = {(row.ticket_type, row.seat_category): row.amount for row in self.prices.all()}
        return pricing.PriceList(
            base=self.price,
            explicit=explicit,
            premium_surcharge=pricing.money(settings.BOOKING_PREMIUM_SURCHARGE),
        )

    @property
    def price_grid(self) -> list[dict]:
        return self.price_list().grid()


class ShowPrice(models.Model):
    """An explicit price of one (ticket type, seat category) pair of a show; a pair without
    a row costs what core.pricing's fallback says."""

    TicketType = models.TextChoices("TicketType", [(t.upper(), t) for t in pricing.TICKET_TYPES])  # type: ignore[call-overload]
    SeatCategory = models.TextChoices("SeatCategory", [(c.upper(), c) for c in seating.CATEGORIES])  # type: ignore[call-overload]

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="prices", db_index=False)
    ticket_type = models.CharField(max_length=16, choices=TicketType.choices)
    seat_category = models.CharField(max_length=16, choices=SeatCategory.choices)
    amount = models.DecimalField(max_digits=8, decimal_places=2)

    class Meta:
        ordering = ["show", "ticket_type", "seat_category"]
        constraints = [
            models.UniqueConstraint(fields=["show", "ticket_type", "seat_category"], name="show_price_unique_pair"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="show_price_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(ticket_type__in=pricing.TICKET_TYPES), name="show_price_ticket_type_known"
            ),
            models.CheckConstraint(condition=Q(seat_category__in=seating.CATEGORIES), name="show_price_category_known"),
        ]

    def __str__(self) -> str:
        return f"{self.show_id}: {self.ticket_type}/{self.seat_category} {self.amount}"
