"""Deciding bookings: the pending bookings of a show, oldest accepted first, in batches.

Lock order. Every transition of a booking (a decision, a failed attempt, a cancel, the
recovery sweep's expiry, a show's cancellation) happens in one transaction that locks the
show row first (FOR NO KEY UPDATE, which leaves new bookings' foreign key checks free), and
only then the booking rows and their seats. Two transitions touching one booking therefore
queue on the show row, and whichever commits first wins: none can hold a booking row while
waiting for a show row another holds, so they never deadlock. A transaction that locks
several shows (the sweep) takes them in id order. And every bulk status change keeps its
status condition on the table it updates (`UPDATE booking ... WHERE status = 'pending'`,
never `WHERE id IN (SELECT ... WHERE status = 'pending')`): after waiting for a row lock,
PostgreSQL re-checks only the updated row, so a condition in a subquery would be judged on
the row as it was before the wait.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from core import booking_sql, db_errors, metrics
from core.models import BookedSeat, Booking, Show
from core.selectors import show_screen_and_held
from core.services import partner_events, selling

logger = logging.getLogger("core.bookings")

Status = Booking.Status
Reason = Booking.FailureReason


def locked_shows() -> QuerySet[Show]:
    """Shows locked FOR NO KEY UPDATE: the first lock of every booking transition (see the
    module's docstring). It conflicts with itself and with any change of the show row, not
    with the KEY SHARE lock of a new booking's foreign key check."""
    return Show.objects.select_for_update(no_key=True, of=("self",))


def fail(booking: Booking, reason: str, now: datetime) -> None:
    booking.status = Status.FAILED
    booking.failure_reason = reason
    booking.decided_at = now


def win(booking: Booking, *, show: Show, labels: list[str], now: datetime) -> None:
    """A booking that gets its seats: confirmed, or on a paying show held until paid."""
    booking.status = Status.HELD if show.payment_required else Status.CONFIRMED
    booking.seats = labels
    booking.decided_at = now
    if show.payment_required:
        booking.hold_expires_at = now + timedelta(minutes=settings.BOOKING_HOLD_MINUTES)
    else:
        booking.confirmed_at = now


def _decide(*, bookings: list[Booking], show: Show, now: datetime) -> list[BookedSeat]:
    """Set each booking's outcome in memory, oldest first; return the seats to insert."""
    if show.status == Show.Status.CANCELLED:
        for booking in bookings:
            fail(booking, Reason.SHOW_CANCELLED, now)
        return []
    if show.starts_at <= now:
        for booking in bookings:
            fail(booking, Reason.SHOW_STARTED, now)
        return []

    # Layout, held seats, seat categories and prices in one statement, read once the show's
    # lock is held. Seat categories, per-user limits and prices: core/services/selling.py.
    layout, taken, categories, prices = show_screen_and_held(show_id=show.pk, with_prices=True)
    show.explicit_prices = prices  # type: ignore[attr-defined]  # read by Show.price_list
    seller = selling.Seller(show=show, bookings=bookings, layout=layout, categories=categories)
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


@transaction.atomic
def booking_decide_batch(*, show_id: int, limit: int | None = None) -> list[Booking]:
    """Decide up to `limit` pending bookings of one show, oldest accepted first.

    Moves each from `pending` to `confirmed` (on a paying show `held`, with its deadline),
    inserting its BookedSeat rows, or to `failed` (with a reason), all in this one
    transaction. Returns the decided bookings; an empty
    list means nothing of this show is pending.

    The show row is locked FOR NO KEY UPDATE first: it serialises deciders of one show even
    if the Redis lock expired under a paused holder, and unlike FOR UPDATE it does not block
    new bookings, whose foreign key check only takes a KEY SHARE lock on the show. The
    pending rows are locked FOR UPDATE, so a concurrent cancel either commits first (the
    row no longer matches status=pending and is skipped) or waits for this decision.
    """
    limit = limit or settings.BOOKING_DECIDE_BATCH
    # The screen is read after this lock is held (in _decide), never joined here.
    show = locked_shows().filter(pk=show_id).first()
    if show is None:
        return []
    bookings = list(
        Booking.objects.select_for_update(of=("self",))
        .filter(show_id=show_id, status=Status.PENDING)
        .order_by("sequence")
        # Every field the decision sets or logs: a deferred one would be fetched row by row.
        .only(
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
        )[:limit]
    )
    if not bookings:
        return []
    now = timezone.now()
    held = _decide(bookings=bookings, show=show, now=now)
    # A reference drawn twice is drawn again (selling.with_unique_references). The same
    # statements record the partner webhooks' events (booking.confirmed / booking.failed).
    events: list[int] = []
    selling.with_unique_references(
        lambda: events.append(
            booking_sql.write_decisions(
                show_id=show_id,
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
                "show_id": show_id,
                "outcome": booking.status,
                "failure_reason": booking.failure_reason,
                "wait_ms": round((now - booking.created_at).total_seconds() * 1000),
                # The submission's request id: the drain may have been queued by another one.
                "request_id": booking.request_id or None,
            },
        )
    return bookings


def booking_decide_next(*, show_id: int, propagate: tuple[type[BaseException], ...] = ()) -> list[Booking]:
    """Decide the next batch of a show's pending bookings; [] when none is pending.

    A batch that raises an unexpected error is rolled back (its bookings stay pending) and
    the oldest pending booking is decided alone; if that raises too, the attempt is counted
    against it (see booking_record_failed_attempt), so one poison booking costs a bounded
    number of attempts and never blocks the rest of its show.

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
