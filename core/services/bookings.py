"""Writes of a booking's life: submit, decide, cancel, recover.

Submission only writes a pending row and queues a wake-up after commit; the seats are
decided later, serially per show, by `booking_decide_batch` under the show's row lock
(the workers add a Redis lock on top so that only one process drains a show at a time).
"""

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from core.exceptions import Conflict, NotFound, ValidationFailed
from core.models import BookedSeat, Booking, Show
from core.seating import Layout, SeatAllocator

logger = logging.getLogger("core.bookings")

Status = Booking.Status
Reason = Booking.FailureReason


def _fingerprint(*, show_id: int, seats: Sequence[str] | None, quantity: int | None) -> str:
    body = json.dumps({"show": show_id, "seats": list(seats) if seats is not None else None, "quantity": quantity})
    return hashlib.sha256(body.encode()).hexdigest()


def _check_request(*, show: Show | None, seats: Sequence[str] | None, quantity: int | None) -> None:
    """Raise ValidationFailed with field details for every reason the request cannot be accepted."""
    errors: dict[str, list[str]] = {}
    limit = settings.BOOKING_MAX_SEATS
    if show is None:
        errors["show"] = ["Unknown show."]
    elif show.status == Show.Status.CANCELLED:
        errors["show"] = ["This show was cancelled."]
    elif show.starts_at <= timezone.now():
        errors["show"] = ["This show has already started."]

    if (seats is None) == (quantity is None):
        errors["non_field_errors"] = ['Give exactly one of "seats" or "quantity".']
    elif seats is not None:
        if not 1 <= len(seats) <= limit:
            errors["seats"] = [f"Ask for between 1 and {limit} seats."]
        elif len(set(seats)) != len(seats):
            errors["seats"] = ["The same seat is listed more than once."]
        elif show is not None:
            layout = Layout(show.screen.rows, show.screen.seats_per_row)
            unknown = [label for label in seats if layout.parse(label) is None]
            if unknown:
                errors["seats"] = [f"Not a seat of this screen: {', '.join(unknown)}."]
    elif not 1 <= quantity <= limit:
        errors["quantity"] = [f"Ask for between 1 and {limit} seats."]

    if errors:
        raise ValidationFailed("The booking request is invalid.", details=errors)


def _find_replay(*, user_id: int, idempotency_key: str, fingerprint: str) -> Booking | None:
    booking = Booking.objects.filter(user_id=user_id, idempotency_key=idempotency_key).first()
    if booking is not None and booking.request_fingerprint != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body.",
            code="idempotency_key_reused",
            details={"booking": str(booking.id)},
        )
    return booking


def booking_submit(
    *,
    user_id: int,
    show_id: int,
    seats: Sequence[str] | None = None,
    quantity: int | None = None,
    idempotency_key: str | None = None,
) -> tuple[Booking, bool]:
    """Accept a booking request: validate it and write a `pending` row.

    Returns (booking, created). A replay of an Idempotency-Key returns the original booking
    with created=False. The decision is queued only after the row is committed, so a worker
    never sees a booking that could still roll back.
    Raises ValidationFailed (400) or Conflict (409, key reused with another body).
    """
    fingerprint = _fingerprint(show_id=show_id, seats=seats, quantity=quantity)
    if idempotency_key is not None:
        replay = _find_replay(user_id=user_id, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if replay is not None:
            return replay, False

    show = Show.objects.select_related("screen").filter(pk=show_id).first()
    _check_request(show=show, seats=seats, quantity=quantity)

    booking = Booking(
        user_id=user_id,
        show_id=show_id,
        seats=list(seats or []),
        quantity=len(seats) if seats is not None else quantity,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
    )
    try:
        with transaction.atomic():
            booking.save(force_insert=True)
            transaction.on_commit(lambda: _queue_decision(show_id=show_id, booking_id=booking.id))
    except IntegrityError:
        # Two requests with one Idempotency-Key raced; the first one's row won.
        if idempotency_key is None:
            raise
        replay = _find_replay(user_id=user_id, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if replay is None:
            raise
        return replay, False
    return booking, True


def _queue_decision(*, show_id: int, booking_id) -> None:
    # Imported here: workers depend on core, not the other way round at import time.
    from workers.dispatch import wake_show

    wake_show(show_id=show_id, booking_id=booking_id)


def _decide(*, bookings: list[Booking], show: Show, now: datetime) -> list[BookedSeat]:
    """Set each booking's outcome in memory, oldest first; return the seats to insert."""
    if show.status == Show.Status.CANCELLED:
        for booking in bookings:
            _fail(booking, Reason.SHOW_CANCELLED, now)
        return []
    if show.starts_at <= now:
        for booking in bookings:
            _fail(booking, Reason.SHOW_STARTED, now)
        return []

    taken = BookedSeat.objects.filter(show_id=show.pk).values_list("seat_label", flat=True)
    allocator = SeatAllocator(Layout(show.screen.rows, show.screen.seats_per_row), taken)
    held: list[BookedSeat] = []
    for booking in bookings:
        if booking.seats:
            labels = booking.seats if allocator.take_exact(booking.seats) else None
            reason = Reason.SEATS_UNAVAILABLE
        else:
            labels = allocator.take_best(booking.quantity)
            reason = Reason.SOLD_OUT
        if labels is None:
            _fail(booking, reason, now)
            continue
        booking.status = Status.CONFIRMED
        booking.seats = labels
        booking.decided_at = booking.confirmed_at = now
        held.extend(BookedSeat(show_id=show.pk, seat_label=label, booking_id=booking.pk) for label in labels)
    return held


def _fail(booking: Booking, reason: str, now: datetime) -> None:
    booking.status = Status.FAILED
    booking.failure_reason = reason
    booking.decided_at = now


@transaction.atomic
def booking_decide_batch(*, show_id: int, limit: int | None = None) -> list[Booking]:
    """Decide up to `limit` pending bookings of one show, oldest accepted first.

    Moves each from `pending` to `confirmed` (inserting its BookedSeat rows) or `failed`
    (with a reason), all in this one transaction. Returns the decided bookings; an empty
    list means nothing of this show is pending.

    The show row is locked FOR NO KEY UPDATE first: it serialises deciders of one show even
    if the Redis lock expired under a paused holder, and unlike FOR UPDATE it does not block
    new bookings, whose foreign key check only takes a KEY SHARE lock on the show. The
    pending rows are locked FOR UPDATE, so a concurrent cancel either commits first (the
    row no longer matches status=pending and is skipped) or waits for this decision.
    """
    limit = limit or settings.BOOKING_DECIDE_BATCH
    show = Show.objects.select_for_update(no_key=True, of=("self",)).select_related("screen").filter(pk=show_id).first()
    if show is None:
        return []
    bookings = list(
        Booking.objects.select_for_update(of=("self",))
        .filter(show_id=show_id, status=Status.PENDING)
        .order_by("sequence")
        .only("id", "show_id", "seats", "quantity", "created_at", "status")[:limit]
    )
    if not bookings:
        return []
    now = timezone.now()
    held = _decide(bookings=bookings, show=show, now=now)
    # The unique (show, seat_label) constraint is the last line: should anything above be
    # wrong, this insert fails and the whole batch rolls back, leaving the rows pending.
    BookedSeat.objects.bulk_create(held)
    Booking.objects.bulk_update(
        bookings, ["status", "seats", "failure_reason", "decided_at", "confirmed_at"], batch_size=limit
    )
    for booking in bookings:
        logger.info(
            "booking decided",
            extra={
                "booking_id": str(booking.id),
                "show_id": show_id,
                "outcome": booking.status,
                "failure_reason": booking.failure_reason,
                "wait_ms": round((now - booking.created_at).total_seconds() * 1000),
            },
        )
    return bookings


# Errors that may say PostgreSQL is unreachable, not that a booking is broken: the caller
# retries the whole drain later instead of blaming a booking (see database_unavailable).
TRANSIENT_ERRORS = (OperationalError, InterfaceError)

# SQLSTATEs of an OperationalError that mean the server or the connection is going away:
# connection exceptions (class 08), shutdowns, a server still starting, no free connection.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says PostgreSQL cannot be reached, rather than that one statement failed.

    psycopg2 reports both as OperationalError: a refused or lost connection (no SQLSTATE, or
    one of the above), but also a statement_timeout (57014) or a deadlock (40P01). Those
    come from the work itself and may come back on every retry, so they must count against
    a booking like any other error, or one such booking would block its show for ever.
    """
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "pgcode", None) or getattr(exc, "pgcode", None)
    return sqlstate is None or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def booking_decide_next(*, show_id: int, propagate: tuple[type[BaseException], ...] = ()) -> list[Booking]:
    """Decide the next batch of a show's pending bookings; [] when none is pending.

    A batch that raises an unexpected error is rolled back (its bookings stay pending) and
    the oldest pending booking is decided alone; if that raises too, the attempt is counted
    against it (see booking_record_failed_attempt), so one poison booking costs a bounded
    number of attempts and never blocks the rest of its show. Errors saying PostgreSQL is
    unavailable (database_unavailable) and the `propagate` types are re-raised for the
    caller to retry.
    """
    try:
        return booking_decide_batch(show_id=show_id)
    except propagate:
        raise
    except Exception as exc:
        if database_unavailable(exc):
            raise
        logger.exception("decision batch failed; deciding the oldest booking alone", extra={"show_id": show_id})
    try:
        return booking_decide_batch(show_id=show_id, limit=1)
    except propagate:
        raise
    except Exception as exc:
        if database_unavailable(exc):
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
            _fail(booking, Reason.PROCESSING_ERROR, timezone.now())
            booking.save(update_fields=["status", "failure_reason", "decided_at"])
            logger.error(
                "booking failed after repeated decision errors",
                extra={"booking_id": str(booking.id), "show_id": show_id, "attempts": booking.decide_attempts},
            )
    return booking


@transaction.atomic
def booking_cancel(*, booking_id, user) -> Booking:
    """Cancel a booking of `user` (staff: anyone's) and free its seats in this transaction.

    pending or confirmed -> cancelled; cancelled stays as it is. Raises NotFound when the
    booking is not visible to the user, Conflict when it failed or its show has started.
    """
    visible = Booking.objects.all() if user.is_staff else Booking.objects.filter(user_id=user.pk)
    booking = visible.select_for_update(of=("self",)).select_related("show").filter(pk=booking_id).first()
    if booking is None:
        raise NotFound("Booking not found.")
    if booking.status == Status.CANCELLED:
        return booking
    if booking.status == Status.FAILED:
        raise Conflict("A failed booking cannot be cancelled.", code="booking_failed")
    if booking.show.starts_at <= timezone.now():
        raise Conflict("The show has already started.", code="show_started")
    # Deleting the held seats in the same transaction frees them for the very next decision.
    BookedSeat.objects.filter(booking_id=booking.pk).delete()
    booking.status = Status.CANCELLED
    booking.cancelled_at = timezone.now()
    booking.save(update_fields=["status", "cancelled_at"])
    logger.info("booking cancelled", extra={"booking_id": str(booking.id), "show_id": booking.show_id})
    return booking


def bookings_expire_started() -> int:
    """Fail every booking still pending for a show that has started (`show_started`).

    One UPDATE; it takes the rows' locks, so a concurrent decision of the same rows either
    commits first (they are no longer pending) or waits and then skips them.
    """
    now = timezone.now()
    expired = Booking.objects.filter(status=Status.PENDING, show__starts_at__lte=now).update(
        status=Status.FAILED, failure_reason=Reason.SHOW_STARTED, decided_at=now
    )
    if expired:
        logger.info("pending bookings of started shows failed", extra={"count": expired})
    return expired
