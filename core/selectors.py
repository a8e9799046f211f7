"""Reads of the booking domain. Every read goes straight to PostgreSQL."""

import contextlib
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import CharField, Count, F, IntegerField, Min, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from core import booking_sql, references
from core.exceptions import Conflict, NotFound
from core.models import (
    SEAT_HOLDING_STATUSES,
    BookedSeat,
    Booking,
    BookingLine,
    Movie,
    Screen,
    Show,
    ShowPrice,
    WaitlistEntry,
)
from core.seating import Layout, SeatCategories

# The group whose members may check tickets in (POST /checkins) without being staff.
SCANNERS_GROUP = "scanners"

MOVIE_ORDERINGS = {"title", "-title", "release_date", "-release_date", "duration_minutes", "-duration_minutes"}


def movie_list(
    *,
    search: str | None = None,
    genre: str | None = None,
    language: str | None = None,
    ordering: str | None = None,
    include_inactive: bool = False,
) -> QuerySet[Movie]:
    """Movies for the catalogue; inactive ones only for staff. Unknown orderings are ignored."""
    movies = Movie.objects.all() if include_inactive else Movie.objects.filter(is_active=True)
    if search:
        movies = movies.filter(title__icontains=search)
    if genre:
        movies = movies.filter(genre__iexact=genre)
    if language:
        movies = movies.filter(language__iexact=language)
    if ordering in MOVIE_ORDERINGS:
        movies = movies.order_by(ordering, "id")
    return movies


def movie_get(*, movie_id: int, include_inactive: bool = False) -> Movie:
    """One movie of the catalogue (inactive ones only for staff). Raises NotFound."""
    movie = movie_list(include_inactive=include_inactive).filter(pk=movie_id).first()
    if movie is None:
        raise NotFound("Movie not found.")
    return movie


def screen_get(*, screen_id: int) -> Screen:
    """One screen. Raises NotFound."""
    screen = Screen.objects.filter(pk=screen_id).first()
    if screen is None:
        raise NotFound("Screen not found.")
    return screen


def screen_list() -> QuerySet[Screen]:
    return Screen.objects.order_by("name", "id")


def with_explicit_prices(shows: QuerySet[Show]) -> QuerySet[Show]:
    """Annotate each show's explicit prices (read by Show.price_list) in the same statement,
    as "type|category|amount" strings: text keeps the amounts exact decimals, and a prefetch
    would be one more query per page or per decided batch."""
    prices = (
        ShowPrice.objects.filter(show_id=OuterRef("pk"))
        .order_by()
        .values(p=Concat("ticket_type", Value("|"), "seat_category", Value("|"), Cast("amount", CharField())))
    )
    return shows.annotate(explicit_prices=ArraySubquery(prices))


def _with_availability(shows: QuerySet[Show]) -> QuerySet[Show]:
    """Annotate total_seats and available_seats (one COUNT subquery per show, on an index)."""
    held = (
        BookedSeat.objects.filter(show_id=OuterRef("pk"))
        .order_by()
        .values("show_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    return with_explicit_prices(shows.select_related("screen")).annotate(
        total_seats=F("screen__rows") * F("screen__seats_per_row"),
        available_seats=F("screen__rows") * F("screen__seats_per_row")
        - Coalesce(Subquery(held, output_field=IntegerField()), Value(0)),
    )


def show_list(
    *,
    movie_id: int | None = None,
    screen_id: int | None = None,
    day: date | None = None,
    upcoming_only: bool = True,
) -> QuerySet[Show]:
    """Scheduled shows, soonest first, with availability; `day` is a date in TIME_ZONE."""
    shows = Show.objects.filter(status=Show.Status.SCHEDULED)
    if upcoming_only:
        shows = shows.filter(starts_at__gt=timezone.now())
    if movie_id is not None:
        shows = shows.filter(movie_id=movie_id)
    if screen_id is not None:
        shows = shows.filter(screen_id=screen_id)
    if day is not None:
        shows = shows.filter(starts_at__gte=timezone.make_aware(datetime.combine(day, time.min)))
        if day < date.max:  # the last day of the calendar has no next day to stop at
            shows = shows.filter(starts_at__lt=timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min)))
    return _with_availability(shows).order_by("starts_at", "id")


def show_get(*, show_id: int) -> Show:
    """One show (any status) with availability. Raises NotFound."""
    show = _with_availability(Show.objects.filter(pk=show_id)).first()
    if show is None:
        raise NotFound("Show not found.")
    return show


def show_screen_and_held(
    *, show_id: int, with_prices: bool = False
) -> tuple[Layout, set[str], SeatCategories, list[str] | None]:
    """A show's screen layout, the labels of its held seats, its seat categories and (with
    `with_prices`) its explicit prices as "type|category|amount" strings (see
    with_explicit_prices), in one statement (core/booking_sql.py). Raises NotFound.

    The decider calls it once it holds the show's lock, so that a screen resized or a price
    changed while it waited is read as it is now: a join in the locking statement would
    keep the rows of that statement's snapshot."""
    screen = shows_screen_and_held(show_ids=[show_id], with_prices=with_prices).get(show_id)
    if screen is None:
        raise NotFound("Show not found.")
    return screen


def shows_screen_and_held(
    *, show_ids: Sequence[int], with_prices: bool = False
) -> dict[int, tuple[Layout, set[str], SeatCategories, list[str] | None]]:
    """show_screen_and_held of several shows in one statement, by show id (a show that does
    not exist is left out)."""
    return {
        show_id: (Layout(row[0], row[1]), set(row[2]), SeatCategories.of(row[3], row[4], row[5]), row[6])
        for show_id, row in booking_sql.seat_map_rows(show_ids=show_ids, with_prices=with_prices).items()
    }


def show_seat_map(*, show_id: int) -> dict:
    """The seat map of a show: its layout, seat categories and held seats (one statement)."""
    layout, held, categories, _ = show_screen_and_held(show_id=show_id)
    category_of = (lambda label: "standard") if categories.all_standard else categories.category_of
    seats = [
        {
            "label": label,
            "row": letter,
            "number": number,
            "available": label not in held,
            "category": category_of(label),
        }
        for label, letter, number in layout.seats()
    ]
    return {"show": show_id, "total": layout.total, "available": layout.total - len(held), "seats": seats}


def bookings_visible_to(*, user) -> QuerySet[Booking]:
    """The bookings `user` may see and cancel: staff all, everyone else only their own,
    filtered in the query itself."""
    return Booking.objects.all() if user.is_staff else Booking.objects.filter(user_id=user.pk)


def booking_get(*, booking_id, user) -> Booking:
    """A booking by primary key if `user` may see it, with its queue position while it is
    pending. Raises NotFound otherwise (no leak)."""
    booking = bookings_visible_to(user=user).filter(pk=booking_id).first()
    if booking is None:
        raise NotFound("Booking not found.")
    bookings_set_queue_positions(bookings=[booking])
    return booking


def booking_tickets(*, booking_id, user) -> list[BookingLine]:
    """The tickets (lines, one per seat) of a confirmed booking `user` may see, in seat
    order of the sale. Raises NotFound as booking_get does, and Conflict
    (`booking_not_confirmed`) for a booking in any other status: only a confirmed booking's
    tickets admit anyone."""
    booking = bookings_visible_to(user=user).filter(pk=booking_id).only("id", "status").first()
    if booking is None:
        raise NotFound("Booking not found.")
    if booking.status != Booking.Status.CONFIRMED:
        raise Conflict(
            f"Tickets are issued for confirmed bookings only; this one is {booking.status}.",
            code="booking_not_confirmed",
            details={"status": str(booking.status)},
        )
    return list(BookingLine.objects.filter(booking_id=booking.pk).order_by("id"))


def user_is_scanner(*, user) -> bool:
    """Whether `user` may check tickets in at the door: staff, or a member of the
    `scanners` group (created by migration 0010; members are added in the admin)."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    return bool(user.is_staff or user.groups.filter(name=SCANNERS_GROUP).exists())


def bookings_set_queue_positions(*, bookings: Sequence[Booking]) -> None:
    """Set `queue_position` on every pending booking of `bookings` (a page, or one booking):
    one query for all of them, none when none is pending."""
    pending = [booking for booking in bookings if booking.status == Booking.Status.PENDING]
    if not pending:
        return
    positions = booking_sql.queue_positions(
        show_ids=[booking.show_id for booking in pending], sequences=[booking.sequence for booking in pending]
    )
    for booking, position in zip(pending, positions, strict=True):
        booking.queue_position = position


def booking_list(
    *, user, owner_id: int | None = None, status: str | None = None, reference: str | None = None
) -> QuerySet[Booking]:
    """Bookings newest first: the caller's own, or (staff, or the owner) those of `owner_id`.
    With `reference` (as a person types it), the booking with that reference: among the
    caller's own, or for staff (the box office) among everyone's."""
    if owner_id is not None and owner_id != user.pk and not user.is_staff:
        raise NotFound("User not found.")
    if reference is not None:
        bookings = bookings_visible_to(user=user) if owner_id is None else Booking.objects.filter(user_id=owner_id)
        bookings = bookings.filter(reference=references.normalise(reference) or "")
    else:
        bookings = Booking.objects.filter(user_id=owner_id if owner_id is not None else user.pk)
    if status:
        bookings = bookings.filter(status=status)
    # The lines (and payments, for refunds) of the page's bookings in a query each, not one
    # per booking.
    return bookings.prefetch_related("lines", "payments").order_by("-created_at", "-sequence")


def bookings_overdue_show_ids(*, older_than_seconds: float) -> list[int]:
    """Shows with a booking still pending `older_than_seconds` after it was accepted."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(
        Booking.objects.filter(status=Booking.Status.PENDING, created_at__lt=cutoff)
        .order_by()
        .values_list("show_id", flat=True)
        .distinct()
    )


def booking_pending_exists(*, show_id: int) -> bool:
    return Booking.objects.filter(show_id=show_id, status=Booking.Status.PENDING).exists()


def bookings_pending_summary(*, top_shows: int) -> dict:
    """Pending bookings for monitoring: how many, since when the oldest waits, and the
    `top_shows` shows with the most, as {"total", "oldest_created_at", "by_show": [(id, n)]}.
    Both queries run on the partial indexes of pending bookings."""
    pending = Booking.objects.filter(status=Booking.Status.PENDING).order_by()
    totals = pending.aggregate(total=Count("*"), oldest=Min("created_at"))
    by_show = pending.values_list("show_id").annotate(n=Count("*")).order_by("-n", "show_id")[:top_shows]
    return {"total": totals["total"], "oldest_created_at": totals["oldest"], "by_show": list(by_show)}


def show_has_live_bookings(*, show_id: int) -> bool:
    """Whether a show has a pending, held or confirmed booking (it may then no longer be moved)."""
    live = [Booking.Status.PENDING, *SEAT_HOLDING_STATUSES]
    return Booking.objects.filter(show_id=show_id, status__in=live).exists()


def show_cancellation_impact(*, show_id: int) -> dict:
    """What cancelling a show would do: {"pending", "confirmed", "seats"} — bookings that would
    fail, bookings that would be cancelled, and seats that would be freed."""
    counts = Booking.objects.filter(show_id=show_id).aggregate(
        pending=Count("pk", filter=Q(status=Booking.Status.PENDING)),
        confirmed=Count("pk", filter=Q(status__in=SEAT_HOLDING_STATUSES)),
    )
    return {**counts, "seats": BookedSeat.objects.filter(show_id=show_id).count()}


# How far back the admin's search looks for a request id (a support case quotes a recent
# one): bookings have no index of their own on it, but one on their creation time.
REQUEST_ID_SEARCH_DAYS = 7


def booking_search_q(term: str) -> Q:
    """The bookings an operator's search term names: its booking id or reference, its show's id, a user's
    exact username or email, or the request id of a submission of the last
    REQUEST_ID_SEARCH_DAYS days. Each alternative is read from an index of core_booking (a
    user is looked up first), so a search costs a few index reads at any table size."""
    term = term.strip()
    since = timezone.now() - timedelta(days=REQUEST_ID_SEARCH_DAYS)
    match = Q(request_id=term, created_at__gte=since)
    with contextlib.suppress(ValueError):
        match |= Q(pk=uuid.UUID(term))
    if term.isascii() and term.isdigit() and int(term) < 2**63:
        match |= Q(show_id=int(term))
    if reference := references.normalise(term):
        match |= Q(reference=reference)
    users = get_user_model().objects.filter(Q(username=term) | Q(email__iexact=term))
    user_ids = list(users.values_list("pk", flat=True)[:100])
    if user_ids:
        match |= Q(user_id__in=user_ids)
    return match


def table_row_estimate(model) -> int:
    """PostgreSQL's estimate of a table's row count (pg_class.reltuples, kept by ANALYZE),
    read without touching the table; -1 when the table was never analyzed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return row[0] if row else -1


def waitlist_with_positions(entries: QuerySet[WaitlistEntry]) -> QuerySet[WaitlistEntry]:
    """Annotate `entries_ahead` (read by WaitlistEntry.position): the waiting entries of the
    same show before each one, counted on the show's queue index (waitlist_waiting_show_idx)."""
    ahead = (
        WaitlistEntry.objects.filter(
            show_id=OuterRef("show_id"), status=WaitlistEntry.Status.WAITING, pk__lt=OuterRef("pk")
        )
        .order_by()
        .values("show_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    return entries.annotate(entries_ahead=Coalesce(Subquery(ahead, output_field=IntegerField()), Value(0)))


def waitlist_list(*, user_id: int) -> QuerySet[WaitlistEntry]:
    """A user's waiting-list entries, newest first, with their positions and offers."""
    entries = WaitlistEntry.objects.filter(user_id=user_id).select_related("booking", "show")
    return waitlist_with_positions(entries).order_by("-created_at", "-id")


def waitlist_entry_get(*, entry_id: int, user_id: int) -> WaitlistEntry:
    """One entry of the user, with its position. Raises NotFound."""
    entry = waitlist_list(user_id=user_id).filter(pk=entry_id).first()
    if entry is None:
        raise NotFound("Waiting-list entry not found.")
    return entry
