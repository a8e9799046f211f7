"""Writes of the catalogue: movies, screens and shows (staff operations).

Lock order: a write that changes a movie or a screen together with its shows locks that row
first, then the shows in id order (a deactivation, a resize, a show moved to another
movie); from the show on, the lock order of core.services.decisions holds.
"""

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core import metrics
from core.exceptions import Conflict, ValidationFailed
from core.models import SEAT_HOLDING_STATUSES, BookedSeat, Booking, Movie, Screen, Show, ShowPrice
from core.seating import SeatCategories
from core.selectors import show_has_live_bookings
from core.services import partner_events
from core.services.payments import payments_refund_for_show
from core.services.waitlist import waitlist_close_show

logger = logging.getLogger("core.catalogue")

_OVERLAP = "This screen already has a show at that time."
_INACTIVE, _INACTIVE_DETAIL = "Inactive movie.", "This movie is not active."

# A show starts and ends a day inside Python's datetime range, so that its times can be
# computed and shown in any time zone: an end past 9999-12-31 was an OverflowError (a 500).
EARLIEST_START = datetime(1, 1, 2, tzinfo=UTC)
LATEST_END = datetime(9999, 12, 30, tzinfo=UTC)
_OUT_OF_RANGE = f"A show must start after {EARLIEST_START:%Y-%m-%d} and end before {LATEST_END:%Y-%m-%d}."


def _last_start(duration_minutes: int) -> datetime:
    return LATEST_END - timedelta(minutes=duration_minutes)


@transaction.atomic
def movie_create(**fields) -> Movie:
    """Create a movie from validated fields."""
    movie = Movie(**fields)
    movie.full_clean()
    movie.save()
    return movie


def _lock_movie(movie_id: int) -> Movie:
    # FOR NO KEY UPDATE: a deactivation and a show being scheduled for the movie take the
    # same lock, so whichever comes second sees what the first committed. A booking's
    # foreign key check on its show does not touch this row.
    return Movie.objects.select_for_update(no_key=True).get(pk=movie_id)


@transaction.atomic
def movie_update(*, movie: Movie, **fields) -> Movie:
    """Update a movie; a new duration moves the end of every show of it (400 if they would
    overlap); deactivating it cancels its shows that have not started (see movie_deactivate)."""
    movie = _lock_movie(movie.pk)
    duration_changed = "duration_minutes" in fields and fields["duration_minutes"] != movie.duration_minutes
    deactivating = movie.is_active and fields.get("is_active") is False
    for name, value in fields.items():
        setattr(movie, name, value)
    movie.full_clean()
    movie.save()
    if duration_changed:
        if Show.objects.filter(movie=movie, starts_at__gt=_last_start(movie.duration_minutes)).exists():
            raise ValidationFailed(_OUT_OF_RANGE, details={"duration_minutes": [_OUT_OF_RANGE]})
        try:
            with transaction.atomic():
                Show.objects.filter(movie=movie).update(
                    ends_at=F("starts_at") + timedelta(minutes=movie.duration_minutes)
                )
        except IntegrityError as exc:
            raise ValidationFailed(
                "The new duration makes a show of this movie overlap another on its screen.",
                details={"duration_minutes": [_OVERLAP]},
            ) from exc
    if deactivating:
        _cancel_upcoming_shows(movie)
    return movie


@transaction.atomic
def movie_deactivate(*, movie: Movie) -> Movie:
    """Take a movie off sale: inactive (hidden from the catalogue, no new shows), and every
    show of it that has not started is cancelled through show_cancel, so its pending
    bookings fail and its confirmed ones are cancelled with their seats freed. Shows under
    way or over keep their bookings. Reactivating the movie revives no cancelled show."""
    return movie_update(movie=movie, is_active=False)


def _cancel_upcoming_shows(movie: Movie) -> None:
    # Cancelled one by one through the show service, in id order (the order any other
    # writer of several shows locks them in). A submission racing this transaction may
    # still be accepted, but the decider locks the show after this commits, sees it
    # cancelled and fails the booking: seats are never sold for a cancelled show.
    upcoming = Show.objects.filter(movie=movie, status=Show.Status.SCHEDULED, starts_at__gt=timezone.now())
    for show in upcoming.order_by("id"):
        show_cancel(show=show)
    logger.info("movie deactivated", extra={"movie_id": movie.pk})


@transaction.atomic
def movie_delete(*, movie: Movie) -> None:
    """Delete a movie, or only deactivate it (movie_deactivate) when any of its shows has
    bookings (their history stays)."""
    movie = _lock_movie(movie.pk)
    if Booking.objects.filter(show__movie=movie).exists():
        movie_deactivate(movie=movie)
        return
    movie.delete()


@transaction.atomic
def screen_create(
    *,
    name: str,
    rows: int,
    seats_per_row: int,
    premium_rows: list[str] | None = None,
    accessible_seats: list[str] | None = None,
    companion_seats: list[str] | None = None,
) -> Screen:
    """Create a screen; its seats are labelled A1 .. by row letter and number, and are
    standard unless marked premium (whole rows), accessible or companion."""
    if Screen.objects.filter(name__iexact=name).exists():
        raise ValidationFailed("Screen name taken.", details={"name": ["A screen with this name exists."]})
    screen = Screen(
        name=name,
        rows=rows,
        seats_per_row=seats_per_row,
        premium_rows=list(premium_rows or []),
        accessible_seats=list(accessible_seats or []),
        companion_seats=list(companion_seats or []),
    )
    problems = SeatCategories.of(premium_rows, accessible_seats, companion_seats).problems(screen.layout)
    if problems:
        raise ValidationFailed("Invalid seat categories.", details=problems)
    screen.full_clean()
    screen.save()
    return screen


@transaction.atomic
def screen_update(*, screen: Screen, **fields) -> Screen:
    """Rename or resize a screen. A layout that would leave out a seat held for any show of
    the screen (past ones included: their seat maps and counts use today's layout) is
    refused; rebuilding a screen is a new screen."""
    screen = Screen.objects.select_for_update(no_key=True).get(pk=screen.pk)
    name = fields.get("name", screen.name)
    if Screen.objects.filter(name__iexact=name).exclude(pk=screen.pk).exists():
        raise ValidationFailed("Screen name taken.", details={"name": ["A screen with this name exists."]})
    rows, seats_per_row = fields.get("rows", screen.rows), fields.get("seats_per_row", screen.seats_per_row)
    if rows < screen.rows or seats_per_row < screen.seats_per_row:
        _lock_upcoming_shows(screen)
        outside = _held_seats_outside(screen_id=screen.pk, rows=rows, seats_per_row=seats_per_row)
        if outside:
            message = f"Seats held for shows of this screen would no longer exist: {', '.join(outside)}."
            raise ValidationFailed(message, details={"rows": [message], "seats_per_row": [message]})
    for field, value in fields.items():
        setattr(screen, field, value)
    # The seat categories must fit the (new) layout; a booking already decided keeps the
    # categories and prices it was sold at.
    problems = screen.categories.problems(screen.layout)
    if problems:
        raise ValidationFailed("Invalid seat categories.", details=problems)
    screen.full_clean()
    screen.save()
    return screen


def _lock_upcoming_shows(screen: Screen) -> None:
    # The decider's lock on each show that can still sell, in id order: a decision under
    # way commits first (its seats are then seen below), and one that starts later finds
    # the new layout.
    shows = Show.objects.filter(screen=screen, status=Show.Status.SCHEDULED, starts_at__gt=timezone.now())
    list(shows.select_for_update(no_key=True).order_by("id").values_list("id", flat=True))


def _held_seats_outside(*, screen_id: int, rows: int, seats_per_row: int, limit: int = 5) -> list[str]:
    """Up to `limit` distinct seat labels held on the screen that a rows x seats_per_row layout lacks."""
    # A label is a row letter then a seat number (core.seating.LABEL_PATTERN, checked in SQL).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT b.seat_label FROM {BookedSeat._meta.db_table} b "  # noqa: S608  # nosec B608
            f"JOIN {Show._meta.db_table} s ON s.id = b.show_id WHERE s.screen_id = %s "
            "AND (ascii(b.seat_label) - ascii('A') >= %s OR substr(b.seat_label, 2)::int > %s) "
            "ORDER BY 1 LIMIT %s",
            [screen_id, rows, seats_per_row, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def _save_show(show: Show) -> Show:
    if not EARLIEST_START <= show.starts_at <= _last_start(show.movie.duration_minutes):
        raise ValidationFailed(_OUT_OF_RANGE, details={"starts_at": [_OUT_OF_RANGE]})
    show.ends_at = Show.end_for(starts_at=show.starts_at, movie=show.movie)
    overlapping = Show.objects.filter(
        screen_id=show.screen_id,
        status=Show.Status.SCHEDULED,
        starts_at__lt=show.ends_at,
        ends_at__gt=show.starts_at,
    ).exclude(pk=show.pk)
    if show.status == Show.Status.SCHEDULED and overlapping.exists():
        raise ValidationFailed(_OVERLAP, details={"starts_at": [_OVERLAP]})
    try:
        # The exclusion constraint settles the race of two staff creating shows at once.
        with transaction.atomic():
            show.save()
    except IntegrityError as exc:
        raise ValidationFailed(_OVERLAP, details={"starts_at": [_OVERLAP]}) from exc
    return show


def _set_prices(show: Show, prices: list[dict]) -> None:
    """Replace the show's explicit prices; a pair listed twice is a 400."""
    pairs = [(p["ticket_type"], p["seat_category"]) for p in prices]
    if len(set(pairs)) != len(pairs):
        raise ValidationFailed(
            "A price is listed twice.", details={"prices": ["Each (ticket_type, seat_category) pair at most once."]}
        )
    ShowPrice.objects.filter(show=show).delete()
    ShowPrice.objects.bulk_create(
        ShowPrice(show=show, ticket_type=t, seat_category=c, amount=p["amount"])
        for (t, c), p in zip(pairs, prices, strict=True)
    )


@transaction.atomic
def show_create(
    *,
    movie: Movie,
    screen: Screen,
    starts_at: datetime,
    price: Decimal,
    prices: list[dict] | None = None,
    payment_required: bool | None = None,
) -> Show:
    """Schedule a show; it ends when the movie does. Raises ValidationFailed on overlap.
    `prices` lists explicit (ticket_type, seat_category, amount) prices; other pairs follow
    core.pricing's fallback from `price` (adult, standard). `payment_required` defaults to
    BOOKING_PAYMENT_REQUIRED."""
    movie = _active_movie(movie.pk)
    if payment_required is None:
        payment_required = settings.BOOKING_PAYMENT_REQUIRED
    show = _save_show(
        Show(movie=movie, screen=screen, starts_at=starts_at, price=price, payment_required=payment_required)
    )
    if prices:
        _set_prices(show, prices)
    return show


def _active_movie(movie_id: int) -> Movie:
    """The movie, locked against a concurrent deactivation; ValidationFailed if inactive."""
    movie = _lock_movie(movie_id)
    if not movie.is_active:
        raise ValidationFailed(_INACTIVE, details={"movie": [_INACTIVE_DETAIL]})
    return movie


def _lock_show(show: Show) -> Show:
    return Show.objects.select_for_update(no_key=True, of=("self",)).select_related("movie").get(pk=show.pk)


@transaction.atomic
def show_update(*, show: Show, **fields) -> Show:
    """Change a show. Moving it (movie, screen, time) is refused once it has live bookings.

    The show row is locked first, as every booking transition does (the lock order of
    core.services.decisions), and the change is judged on its current values; a movie it
    moves to is locked before it, as a deactivation locks its movie before the shows.
    """
    target = _lock_movie(fields["movie"].pk) if "movie" in fields else None
    show = _lock_show(show)
    if fields.get("status") == Show.Status.CANCELLED and show.status != Show.Status.CANCELLED:
        fields.pop("status")
        show = show_cancel(show=show)
    elif "status" in fields and fields["status"] != show.status:
        raise Conflict("A cancelled show cannot be scheduled again.", code="show_cancelled")
    fields.pop("status", None)
    # Prices given replace the show's explicit ones; bookings already decided keep theirs.
    prices = fields.pop("prices", None)
    if prices is not None:
        _set_prices(show, prices)
    # Moving a show, or changing how it sells, under bookings that were made otherwise.
    moves = {
        name
        for name in ("movie", "screen", "starts_at", "payment_required")
        if name in fields and fields[name] != getattr(show, name)
    }
    if moves and show_has_live_bookings(show_id=show.pk):
        raise Conflict(
            "A show with bookings cannot be moved or change payment_required; cancel it instead.",
            code="show_has_bookings",
        )
    if "movie" in moves and target is not None:
        if not target.is_active:
            raise ValidationFailed(_INACTIVE, details={"movie": [_INACTIVE_DETAIL]})
        fields["movie"] = target
    for name, value in fields.items():
        setattr(show, name, value)
    return _save_show(show)


@transaction.atomic
def show_cancel(*, show: Show) -> Show:
    """Cancel a show: its pending bookings fail (`show_cancelled`), its held and confirmed
    ones are cancelled and their seats freed, their charges refunded (refund_pending here, the
    provider after the commit), and its waiting list closes, all in one transaction.

    The show row is locked FOR NO KEY UPDATE first, like the decider does (the lock order of
    core.services.decisions), so no decision, cancel or sweep of this show can interleave
    with the cancellation, and each bulk update keeps its status condition on the rows it
    updates.
    """
    show = _lock_show(show)
    if show.status == Show.Status.CANCELLED:
        return show
    now = timezone.now()
    show.status = Show.Status.CANCELLED
    show.save(update_fields=["status"])
    live = Booking.objects.filter(show=show)
    failed = live.filter(status=Booking.Status.PENDING).update(
        status=Booking.Status.FAILED, failure_reason=Booking.FailureReason.SHOW_CANCELLED, decided_at=now
    )
    BookedSeat.objects.filter(show=show).delete()
    cancelled = live.filter(status__in=SEAT_HOLDING_STATUSES).update(status=Booking.Status.CANCELLED, cancelled_at=now)
    waitlist_close_show(show_id=show.pk, now=now)
    # Partner webhooks: the rows the two updates set, named by what they set.
    if failed:
        partner_events.booking_events_record(
            bookings=live.filter(
                status=Booking.Status.FAILED, failure_reason=Booking.FailureReason.SHOW_CANCELLED, decided_at=now
            ),
            event=partner_events.Event.FAILED,
        )
    if cancelled:
        partner_events.booking_events_record(
            bookings=live.filter(status=Booking.Status.CANCELLED, cancelled_at=now),
            event=partner_events.Event.CANCELLED,
        )
    # Their charges are refunded, whatever the cutoff: the cinema cancelled (after the
    # cancelled events: a partner hears booking.cancelled, then booking.refunded).
    payments_refund_for_show(show_id=show.pk, now=now)
    transaction.on_commit(lambda: metrics.bookings_failed(failed, reason=Booking.FailureReason.SHOW_CANCELLED))
    transaction.on_commit(lambda: metrics.bookings_cancelled(cancelled, by="show"))
    logger.info(
        "show cancelled",
        extra={"show_id": show.pk, "bookings_failed": failed, "bookings_cancelled": cancelled},
    )
    return show
