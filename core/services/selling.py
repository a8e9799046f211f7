"""Selling rules of a booking: what a request may ask for (ticket types, seat category,
wheelchair spaces), the limits per user, and what a decided booking costs.

Submission (core/services/submission.py) calls `request_problems` and writes the request's
selling fields; the decider (core/services/decisions.py) calls a `Seller` once per batch, under the show's lock, so the
limits are decided in acceptance order with every other decision of the show and no race
can exceed them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from core import pricing, references
from core.allocation import SeatAllocator
from core.exceptions import TooManyRequests
from core.models import OPEN_STATUSES, SEAT_HOLDING_STATUSES, Booking, BookingLine
from core.seating import PREMIUM, STANDARD, Layout, SeatCategories

# Best available may be asked for within these; wheelchair spaces and companion seats are
# asked for with `accessible`, never as a category.
REQUESTABLE_CATEGORIES = (STANDARD, PREMIUM)

# The pending-bookings limit is checked under a transaction-scoped advisory lock per user,
# in this namespace (the first key of the two-key form; the second is the user id).
PENDING_LOCK_NAMESPACE = 0x5E11


class TooManyPending(TooManyRequests):
    """The user already has BOOKING_MAX_PENDING_PER_USER bookings waiting (HTTP 429)."""

    code = "too_many_pending"

    def __init__(self, limit: int):
        super().__init__(
            f"You already have {limit} bookings waiting for a decision; wait for one to be decided.",
            details={"limit": limit},
        )


# ---- Submission ---------------------------------------------------------------------------


def normalised_tickets(tickets: Mapping[str, int] | None) -> dict[str, int]:
    """Ticket counts without zeros, in the fixed ticket order; {} means every ticket adult."""
    if not tickets:
        return {}
    return {t: tickets[t] for t in pricing.TICKET_TYPES if tickets.get(t)}


def request_problems(
    *,
    seats: Sequence[str] | None,
    quantity: int | None,
    tickets: Mapping[str, int] | None,
    seat_category: str | None,
    accessible: bool,
) -> dict[str, list[str]]:
    """Field errors of a request's selling fields that need no show to judge."""
    errors: dict[str, list[str]] = {}
    count = len(seats) if seats is not None else quantity
    if tickets is not None:
        unknown = sorted(str(t) for t in tickets if t not in pricing.TICKET_TYPES)
        if unknown:
            errors["tickets"] = [f"Unknown ticket type: {', '.join(unknown)}."]
        elif any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in tickets.values()):
            errors["tickets"] = ["Ticket counts are whole numbers, 0 or more."]
        elif count is not None and sum(tickets.values()) != count:
            errors["tickets"] = [f"The ticket counts add up to {sum(tickets.values())}, not to the {count} seats."]
    if seats is not None:
        if seat_category is not None:
            errors["seat_category"] = ['Only with "quantity": exact seats have their own categories.']
        if accessible:
            errors["accessible"] = ['Only with "quantity": ask for the wheelchair space itself in "seats".']
    elif seat_category is not None and seat_category not in REQUESTABLE_CATEGORIES:
        errors["seat_category"] = [
            f'One of {", ".join(REQUESTABLE_CATEGORIES)}; ask for wheelchair spaces with "accessible": true.'
        ]
    return errors


def companion_problem(seats: Sequence[str], categories: SeatCategories) -> str | None:
    """Why these exact seats cannot be sold together, or None: a companion seat is sold only
    with a wheelchair space in the same booking."""
    companions = [label for label in seats if label in categories.companion_seats]
    if companions and not any(label in categories.accessible_seats for label in seats):
        return f"A companion seat is sold only with a wheelchair space in the same booking: {', '.join(companions)}."
    return None


def pending_count(user_id: int) -> int:
    """The user's bookings counted against BOOKING_MAX_PENDING_PER_USER: pending or held."""
    return Booking.objects.filter(user_id=user_id, status__in=OPEN_STATUSES).count()


def open_counts_locked(user_ids: Sequence[int]) -> dict[int, int]:
    """The bookings of each user counted against BOOKING_MAX_PENDING_PER_USER, counted once
    this transaction holds each user's pending-limit lock (the one a submission takes, see
    core/booking_sql.py), so that no submission of theirs can slip in before it commits.
    The locks are taken in user id order, in one statement: two transactions locking
    overlapping users cannot deadlock."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, u) FROM (SELECT u FROM unnest(%s::int[]) u ORDER BY u) users",
            [PENDING_LOCK_NAMESPACE, ids],
        )
        cursor.execute(
            f"SELECT user_id, count(*) FROM {Booking._meta.db_table} "  # noqa: S608  # nosec B608
            "WHERE user_id = ANY(%s) AND status = ANY(%s) GROUP BY user_id",
            [ids, [str(status) for status in OPEN_STATUSES]],
        )
        return {user_id: int(n) for user_id, n in cursor.fetchall()}


def live_seats(*, show_id: int, user_id: int) -> int:
    """The seats `user_id` holds in the show now (held and confirmed bookings)."""
    return seats_by_user({show_id: {user_id}}).get(show_id, {}).get(user_id, 0)


# ---- Decision -----------------------------------------------------------------------------


@dataclass
class Sale:
    """What a confirmed booking sold, kept on the booking until the batch is written."""

    lines: list[pricing.Line]
    total: object
    currency: str
    reference: str


class Seller:
    """The selling rules for one decided batch of one show, in acceptance order."""

    def __init__(
        self,
        *,
        show,
        bookings: Sequence[Booking],
        layout: Layout,
        categories: SeatCategories,
        seats_of: dict[int, int] | None = None,
    ):
        """`show` carries its explicit prices (the `explicit_prices` of core.selectors), and
        `layout` and `categories` are its screen's, all read once the show's lock is held;
        `seats_of` is the seats each user of `bookings` holds in the show (seats_by_user),
        read here if not given."""
        self.show = show
        self.prices = show.price_list()
        self.currency = settings.BOOKING_CURRENCY
        self.max_seats = settings.BOOKING_MAX_SEATS_PER_USER_PER_SHOW
        self.layout, self.categories = layout, categories
        if seats_of is None:
            seats_of = seats_by_user({show.pk: {b.user_id for b in bookings}}).get(show.pk, {})
        self._seats_of = dict(seats_of)

    def allocator(self, taken) -> SeatAllocator:
        return SeatAllocator(self.layout, taken, self.categories)

    def take(self, booking: Booking, allocator: SeatAllocator) -> tuple[list[str] | None, str]:
        """(seats, "") for a booking that wins, or (None, failure reason)."""
        count = len(booking.seats) if booking.seats else booking.quantity
        if self._seats_of.get(booking.user_id, 0) + count > self.max_seats:
            return None, Booking.FailureReason.LIMIT_EXCEEDED
        if booking.seats:
            if not allocator.take_exact(booking.seats):
                return None, Booking.FailureReason.SEATS_UNAVAILABLE
            labels = list(booking.seats)
        else:
            category = booking.seat_category or STANDARD
            best = allocator.take_best(booking.quantity, category, accessible=booking.accessible)
            if best is None:
                return None, Booking.FailureReason.SOLD_OUT
            labels = best
        self._seats_of[booking.user_id] = self._seats_of.get(booking.user_id, 0) + len(labels)
        return labels, ""

    def sell(self, booking: Booking, labels: Sequence[str], allocator: SeatAllocator) -> None:
        """Price the seats at today's prices and give the booking its reference."""
        seats = [(label, allocator.category_of(label)) for label in labels]
        lines = pricing.price_lines(self.prices, seats, booking.tickets)
        total = pricing.total(lines)
        booking.total, booking.currency = total, self.currency
        booking.reference = references.new_reference()
        booking._sale = Sale(  # type: ignore[attr-defined]
            lines, total, self.currency, booking.reference
        )


def seats_by_user(users_by_show: Mapping[int, set[int]]) -> dict[int, dict[int, int]]:
    """Seats each of these users holds in each of these shows now (their held and confirmed
    bookings), by show then user, in one statement."""
    pairs = [(show_id, user_id) for show_id, users in users_by_show.items() for user_id in users]
    if not pairs:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT b.show_id, b.user_id, sum(cardinality(b.seats)) FROM {Booking._meta.db_table} b "  # noqa: S608  # nosec B608
            "JOIN unnest(%s::bigint[], %s::bigint[]) AS q(show_id, user_id) "
            "ON b.show_id = q.show_id AND b.user_id = q.user_id "
            "WHERE b.status = ANY(%s) GROUP BY b.show_id, b.user_id",
            [[p[0] for p in pairs], [p[1] for p in pairs], [str(status) for status in SEAT_HOLDING_STATUSES]],
        )
        held: dict[int, dict[int, int]] = {}
        for show_id, user_id, n in cursor.fetchall():
            held.setdefault(show_id, {})[user_id] = int(n)
        return held


def write_sales(cursor, bookings: Sequence[Booking]) -> None:
    """Insert the lines of the batch's won bookings in one statement."""
    sold = [(b.pk, line) for b in bookings if (sale := getattr(b, "_sale", None)) for line in sale.lines]
    if not sold:
        return
    cursor.execute(
        f"INSERT INTO {BookingLine._meta.db_table} (booking_id, seat_label, seat_category, ticket_type, amount) "  # noqa: S608  # nosec B608
        "SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::varchar[], %s::varchar[], %s::numeric[])",
        [
            [str(pk) for pk, _ in sold],
            [line.seat for _, line in sold],
            [line.seat_category for _, line in sold],
            [line.ticket_type for _, line in sold],
            [line.amount for _, line in sold],
        ],
    )


REFERENCE_ATTEMPTS = 5
REFERENCE_CONSTRAINT = "booking_reference_unique"


def with_unique_references(write, bookings: Sequence[Booking]) -> None:
    """Run `write()` (which stores the batch's references) in a savepoint; should a
    reference already exist (the unique constraint refuses it), draw new ones and retry."""
    for attempt in range(REFERENCE_ATTEMPTS):
        try:
            with transaction.atomic():
                write()
            return
        except IntegrityError as exc:
            diag = getattr(exc.__cause__, "diag", None)
            if getattr(diag, "constraint_name", None) != REFERENCE_CONSTRAINT or attempt == REFERENCE_ATTEMPTS - 1:
                raise
            for booking in bookings:
                if sale := getattr(booking, "_sale", None):
                    booking.reference = sale.reference = references.new_reference()
