"""Writes of the catalogue: movies, screens and shows (staff operations)."""

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core import metrics
from core.exceptions import Conflict, ValidationFailed
from core.models import BookedSeat, Booking, Movie, Screen, Show, ShowPrice
from core.seating import SeatCategories

logger = logging.getLogger("core.catalogue")

_OVERLAP = "This screen already has a show at that time."

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


@transaction.atomic
def movie_update(*, movie: Movie, **fields) -> Movie:
    """Update a movie; a new duration moves the end of every show of it (400 if they would overlap)."""
    duration_changed = "duration_minutes" in fields and fields["duration_minutes"] != movie.duration_minutes
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
    return movie


@transaction.atomic
def movie_delete(*, movie: Movie) -> None:
    """Delete a movie, or only deactivate it when any of its shows has bookings (history stays)."""
    if Booking.objects.filter(show__movie=movie).exists():
        movie.is_active = False
        movie.save(update_fields=["is_active"])
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
    *, movie: Movie, screen: Screen, starts_at: datetime, price: Decimal, prices: list[dict] | None = None
) -> Show:
    """Schedule a show; it ends when the movie does. Raises ValidationFailed on overlap.
    `prices` lists explicit (ticket_type, seat_category, amount) prices; other pairs follow
    core.pricing's fallback from `price` (adult, standard)."""
    if not movie.is_active:
        raise ValidationFailed("Inactive movie.", details={"movie": ["This movie is not active."]})
    show = _save_show(Show(movie=movie, screen=screen, starts_at=starts_at, price=price))
    if prices:
        _set_prices(show, prices)
    return show


def _lock_show(show: Show) -> Show:
    return Show.objects.select_for_update(no_key=True, of=("self",)).select_related("movie").get(pk=show.pk)


@transaction.atomic
def show_update(*, show: Show, **fields) -> Show:
    """Change a show. Moving it (movie, screen, time) is refused once it has live bookings.

    The show row is locked first, as every booking transition does (the lock order of
    core.services.bookings), and the change is judged on its current values.
    """
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
    moves = {
        name for name in ("movie", "screen", "starts_at") if name in fields and fields[name] != getattr(show, name)
    }
    if moves and show.bookings.exclude(status__in=[Booking.Status.FAILED, Booking.Status.CANCELLED]).exists():
        raise Conflict("A show with bookings cannot be moved; cancel it instead.", code="show_has_bookings")
    for name, value in fields.items():
        setattr(show, name, value)
    return _save_show(show)


@transaction.atomic
def show_cancel(*, show: Show) -> Show:
    """Cancel a show: its pending bookings fail (`show_cancelled`), its confirmed ones are
    cancelled and their seats freed, all in one transaction.

    The show row is locked FOR NO KEY UPDATE first, like the decider does (the lock order of
    core.services.bookings), so no decision, cancel or sweep of this show can interleave
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
    cancelled = live.filter(status=Booking.Status.CONFIRMED).update(status=Booking.Status.CANCELLED, cancelled_at=now)
    transaction.on_commit(lambda: metrics.bookings_failed(failed, reason=Booking.FailureReason.SHOW_CANCELLED))
    transaction.on_commit(lambda: metrics.bookings_cancelled(cancelled, by="show"))
    logger.info(
        "show cancelled",
        extra={"show_id": show.pk, "bookings_failed": failed, "bookings_cancelled": cancelled},
    )
    return show
