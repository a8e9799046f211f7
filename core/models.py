"""The booking domain's tables and the constraints that guard them.

PostgreSQL is the source of truth: the constraints here (one holder per seat, no two shows
overlapping on a screen, one booking per idempotency key) hold whatever the code above
them does.
"""

import uuid
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

# The booking acceptance order comes from this PostgreSQL sequence (created in migration
# 0001): nextval() is monotonic across every web process, unlike wall-clock timestamps.
BOOKING_SEQUENCE = "core_booking_accept_seq"


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


class Booking(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CONFIRMED = "confirmed"
        FAILED = "failed"
        CANCELLED = "cancelled"

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
            # A user's pending bookings, counted against BOOKING_MAX_PENDING_PER_USER on submit.
            models.Index(fields=["user"], condition=Q(status="pending"), name="booking_pending_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
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
        """The lines of a confirmed (or later cancelled) booking; no query for any other."""
        if self.reference is None:
            return []
        return list(self.lines.all())


class BookedSeat(models.Model):
    """A seat held by a confirmed booking. Cancelling deletes the row, freeing the seat."""

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

    class Meta:
        ordering = ["booking", "id"]
        constraints = [
            models.UniqueConstraint(fields=["booking", "seat_label"], name="booking_line_unique_seat"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="booking_line_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.booking_id}:{self.seat_label} {self.ticket_type} {self.amount}"


class RefreshTokenFamily(models.Model):
    """The chain of refresh tokens that one login grows: each refresh rotates to the next.

    Only the newest token of a family (`current_jti`) may be refreshed. Any older one has
    been used already, so whoever presents it holds a copy: the whole family is revoked,
    the thief's tokens and the owner's alike (the owner logs in again). A family is also
    revoked by logout and by a password change. The row is the lock that serialises every
    rotation and revocation of the family (core/services/auth.py). The tokens themselves
    live in simplejwt's OutstandingToken and BlacklistedToken tables.
    """

    class RevokedReason(models.TextChoices):
        REUSE = "reuse"
        LOGOUT = "logout"
        PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a password

    # The jti of the family's first token (from login); later tokens carry it in "fam".
    root_jti = models.CharField(primary_key=True, max_length=255)
    # Deleting a user deletes their families (their tokens are refused anyway).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    current_jti = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, choices=RevokedReason.choices, blank=True)

    class Meta:
        verbose_name_plural = "refresh token families"

    def __str__(self) -> str:
        return f"{self.root_jti} (user {self.user_id})"
