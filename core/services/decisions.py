"""Deciding bookings: the pending bookings of a show, oldest accepted first, in batches.

Lock order. Every transition of a booking (a decision, a failed attempt, a cancel, the
recovery sweep's expiry, a show's cancellation) happens in one transaction that locks the
show row first (FOR NO KEY UPDATE, which leaves new bookings' foreign key checks free), and
only then the booking rows and their seats. Two transitions touching one booking therefore
queue on the show row, and whichever commits first wins: none can hold a booking row while
waiting for a show row another holds, so they never deadlock. A transaction that locks
several shows (the sweep, a drain's turn of several shows) takes them in id order. And
every bulk status change keeps its status condition on the table it updates
(`UPDATE booking ... WHERE status = 'pending'`, never `WHERE id IN (SELECT ... WHERE
status = 'pending')`): after waiting for a row lock, PostgreSQL re-checks only the updated
row, so a condition in a subquery would be judged on the row as it was before the wait.
"""

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from core import booking_sql, db_errors, metrics
from core.exceptions import NotFound
from core.models import BookedSeat, Booking, Show
from core.selectors import shows_screen_and_held
from core.services import partner_events, selling

logger = logging.getLogger("core.bookings")

Status = Booking.Status
Reason = Booking.FailureReason


def locked_shows(*, skip_locked: bool = False) -> QuerySet[Show]:
    """Shows locked FOR NO KEY UPDATE: the first lock of every booking transition (see the
    module's docstring). It conflicts with itself and with any change of the show row, not
    with the KEY SHARE lock of a new booking's foreign key check. With `skip_locked`, a
    show whose row another transaction holds is left out instead of waited for."""
    return Show.objects.select_for_update(no_key=True, of=("self",), skip_locked=skip_locked)


def fail(booking: Booking, reason: str, now: datetime) -> None:
    booking.status = Status.FAILED
    booking.failure_reason = reason
    booking.decided_at = now


def win(booking: Booking, *, show: Show, labels: list[str], now: datetime, hold: timedelta | None = None) -> None:
    """A booking that gets its seats: confirmed, or held until `now + hold` (a paying show
    holds its winners for BOOKING_HOLD_MINUTES; a waiting-list offer gives its own `hold`)."""
    if hold is None and show.payment_required:
        hold = timedelta(minutes=settings.BOOKING_HOLD_MINUTES)
    booking.status = Status.CONFIRMED if hold is None else Status.HELD
    booking.seats = labels
    booking.decided_at = now
    if hold is None:
        booking.confirmed_at = now
    else:
        booking.hold_expires_at = now + hold


def _is_open(show: Show, now: datetime) -> bool:
    return show.status != Show.Status.CANCELLED and show.starts_at > now


def _decide(
    *, bookings: list[Booking], show: Show, now: datetime, screen: tuple | None, seats_of: dict[int, int]
) -> list[BookedSeat]:
    """Set each booking of one show's batch's outcome in memory, oldest first; return the
    seats to insert. `screen` is the show's show_screen_and_held (with prices) and
    `seats_of` the seats its users hold (selling.seats_by_user), both read once the show's
    lock is held; neither is needed for a show that is cancelled or has started."""
    if show.status == Show.Status.CANCELLED:
        for booking in bookings:
            fail(booking, Reason.SHOW_CANCELLED, now)
        return []
    if show.starts_at <= now:
        for booking in bookings:
            fail(booking, Reason.SHOW_STARTED, now)
        return []
    if screen is None:
        raise NotFound("Show not found.")
    # Seat categories, per-user limits and prices: core/services/selling.py.
    layout, taken, categories, prices = screen
    show.explicit_prices = prices  # type: ignore[attr-defined]  # read by Show.price_list
    seller = selling.Seller(show=show, bookings=bookings, layout=layout, categories=categories, seats_of=seats_of)
    allocator = seller.allocator(taken)
    held: list[BookedSeat] = []
    for booking in bookings:
        labels, reason = seller.take(booking, allocator)
        if labels is None:
            fail(booking, reason, now)
            continue
        win(booking, show=show, labels=labels, now=now)
        seller.sell(booking, labels, allocator)
        held.extend(BookedSeat(show_id=show.pk, seat_label=label, booking_id=booking.pk) for label in labels)
    return held


# Every field the decision sets or logs: a deferred one would be fetched row by row.
_DECIDED_COLUMNS = (
    "id",
    "show_id",
    "seats",
    "quantity",
    "created_at",
    "status",
    "failure_reason",
    "decided_at",
    "confirmed_at",
    "request_id",
    "user_id",
    "tickets",
    "seat_category",
    "accessible",
    "reference",
    "total",
    "currency",
    "hold_expires_at",
)


@transaction.atomic
def booking_decide_batch(*, show_id: int, limit: int | None = None) -> list[Booking]:
    """Decide up to `limit` pending bookings of one show, oldest accepted first.

    Moves each from `pending` to `confirmed` (on a paying show `held`, with its deadline),
    inserting its BookedSeat rows, or to `failed` (with a reason), all in this one
    transaction. Returns the decided bookings; an empty
    list means nothing of this show is pending.

    The show row is locked FOR NO KEY UPDATE first, waiting for any transaction that holds
    it: bookings_decide_batch for one show.
    """
    return bookings_decide_batch(show_ids=[show_id], limit=limit).get(show_id, [])


@transaction.atomic
def bookings_decide_batch(
    *, show_ids: Sequence[int], limit: int | None = None, skip_locked: bool = False
) -> dict[int, list[Booking]]:
    """Decide up to `limit` pending bookings of each of `show_ids`, oldest accepted first
    per show, all in this one transaction and a fixed number of statements however many
    shows and bookings it decides.

    Moves each from `pending` to `confirmed` (on a paying show `held`, with its deadline),
    inserting its BookedSeat rows, or to `failed` (with a reason). Returns the decided
    bookings by show, for every show whose row it locked (an empty list: nothing of that
    show was pending); with `skip_locked`, a show whose row another transaction holds is
    not waited for and is left out of the result (its bookings stay pending).

    The show rows are locked FOR NO KEY UPDATE first, in id order: that serialises the
    deciders of a show even if its Redis lock expired under a paused holder, and unlike FOR
    UPDATE it does not block new bookings, whose foreign key check only takes a KEY SHARE
    lock on the show. The pending rows are locked FOR UPDATE, so a concurrent cancel either
    commits first (the row no longer matches status=pending and is skipped) or waits for
    this decision. Layouts, held seats and prices are read once the shows' locks are held.
    """
    limit = limit or settings.BOOKING_DECIDE_BATCH
    # The screens are read after this lock is held, never joined here.
    shows = {show.pk: show for show in locked_shows(skip_locked=skip_locked).filter(pk__in=show_ids).order_by("pk")}
    if not shows:
        return {}
    pending = list(Booking.objects.raw(booking_sql.pending_rows_sql(_DECIDED_COLUMNS), [sorted(shows), limit]))
    decided: dict[int, list[Booking]] = {show_id: [] for show_id in shows}
    for booking in pending:
        decided[booking.show_id].append(booking)
    bookings = [booking for batch in decided.values() for booking in batch]
    if not bookings:
        return decided
    now = timezone.now()
    selling_shows = [show_id for show_id, batch in decided.items() if batch and _is_open(shows[show_id], now)]
    screens = shows_screen_and_held(show_ids=selling_shows, with_prices=True) if selling_shows else {}
    seats_of = selling.seats_by_user({show_id: {b.user_id for b in decided[show_id]} for show_id in selling_shows})
    held: list[BookedSeat] = []
    for show_id, batch in decided.items():
        if batch:
            held += _decide(
                bookings=batch,
                show=shows[show_id],
                now=now,
                screen=screens.get(show_id),
                seats_of=seats_of.get(show_id, {}),
            )
    # A reference drawn twice is drawn again (selling.with_unique_references). The same
    # statements record the partner webhooks' events (booking.confirmed / booking.failed).
    events: list[int] = []
    selling.with_unique_references(
        lambda: events.append(
            booking_sql.write_decisions(
                bookings=bookings,
                held=held,
                now=now,
                write_lines=lambda cursor: selling.write_sales(cursor, bookings),
            )
        ),
        bookings,
    )
    transaction.on_commit(lambda: metrics.bookings_decided(bookings, now=now))
    if events and events[-1]:
        transaction.on_commit(partner_events.dispatch_soon)
    for booking in bookings:
        logger.info(
            "booking decided",
            extra={
                "booking_id": str(booking.id),
                "show_id": booking.show_id,
                "outcome": booking.status,
                "failure_reason": booking.failure_reason,
                "wait_ms": round((now - booking.created_at).total_seconds() * 1000),
                # The submission's request id: the drain may have been queued by another one.
                "request_id": booking.request_id or None,
            },
        )
    return decided


def booking_decide_next(*, show_id: int, propagate: tuple[type[BaseException], ...] = ()) -> list[Booking]:
    """Decide the next batch of a show's pending bookings; [] when none is pending.

    A batch that raises an unexpected error is rolled back (its bookings stay pending) and
    the oldest pending booking is decided alone; if that raises too, the attempt is counted
    against it (see booking_record_failed_attempt), so one poison booking costs a bounded
    number of attempts and never blocks the rest of its show. The booking returned then is
    still pending (until its last attempt).

    Database outages and contention (lock or statement timeouts, deadlocks, serialization
    failures: core.db_errors) are re-raised for the caller to retry the drain later, and
    never counted against a booking: they say that other work was in the way, not that the
    booking is broken. A statement timeout of a whole batch may come from its size, so the
    oldest booking is tried alone first. The `propagate` types are re-raised as well.
    """
    try:
        return booking_decide_batch(show_id=show_id)
    except propagate:
        raise
    except Exception as exc:
        failure = db_errors.classify(exc)
        if failure is not None and failure is not db_errors.DbFailure.STATEMENT_TIMEOUT:
            raise
        logger.exception("decision batch failed; deciding the oldest booking alone", extra={"show_id": show_id})
    try:
        return booking_decide_batch(show_id=show_id, limit=1)
    except propagate:
        raise
    except Exception as exc:
        if db_errors.classify(exc) is not None:
            raise
        logger.exception("deciding a booking failed", extra={"show_id": show_id})
    booking = booking_record_failed_attempt(show_id=show_id)
    return [booking] if booking is not None else []


def bookings_decide_next(
    *, show_ids: Sequence[int], propagate: tuple[type[BaseException], ...] = ()
) -> dict[int, list[Booking]]:
    """Decide the next batch of each of several shows in one transaction
    (bookings_decide_batch), skipping a show whose row another transaction holds; returns
    the decided bookings by show, a skipped show left out (its bookings stay pending).

    Should the shared batch raise an unexpected error (a poison booking in one of the
    shows), it is rolled back and each show is decided on its own (booking_decide_next, in
    id order), so that the poison booking costs its own show an attempt and the other
    shows nothing. Outages and contention, and the `propagate` types, are re-raised as by
    booking_decide_next; a statement timeout falls back to one show at a time too.
    """
    try:
        return bookings_decide_batch(show_ids=show_ids, skip_locked=True)
    except propagate:
        raise
    except Exception as exc:
        failure = db_errors.classify(exc)
        if failure is not None and failure is not db_errors.DbFailure.STATEMENT_TIMEOUT:
            raise
        logger.exception("decision batch of several shows failed; deciding them one at a time")
    return {show_id: booking_decide_next(show_id=show_id, propagate=propagate) for show_id in sorted(show_ids)}


def booking_record_failed_attempt(*, show_id: int) -> Booking | None:
    """Count a failed decision attempt against the oldest pending booking of a show.

    Called after deciding that booking alone raised. Once it has failed
    BOOKING_MAX_DECIDE_ATTEMPTS times it is failed with `processing_error`, so a poison
    booking can neither block its show nor be retried forever. Returns the booking.
    """
    with transaction.atomic():
        if not locked_shows().filter(pk=show_id).exists():
            return None
        booking = (
            Booking.objects.select_for_update(of=("self",))
            .filter(show_id=show_id, status=Status.PENDING)
            .order_by("sequence")
            .first()
        )
        if booking is None:
            return None
        booking.decide_attempts = F("decide_attempts") + 1
        booking.save(update_fields=["decide_attempts"])
        booking.refresh_from_db(fields=["decide_attempts"])
        if booking.decide_attempts >= settings.BOOKING_MAX_DECIDE_ATTEMPTS:
            now = timezone.now()
            fail(booking, Reason.PROCESSING_ERROR, now)
            booking.save(update_fields=["status", "failure_reason", "decided_at"])
            partner_events.booking_events_record(bookings=[booking], event=partner_events.Event.FAILED)
            transaction.on_commit(lambda: metrics.bookings_decided([booking], now=now))
            logger.error(
                "booking failed after repeated decision errors",
                extra={
                    "booking_id": str(booking.id),
                    "show_id": show_id,
                    "attempts": booking.decide_attempts,
                    "request_id": booking.request_id or None,
                },
            )
    return booking
