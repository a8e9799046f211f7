"""Submitting a booking: check the request, write a `pending` row, wake its show.

The seats are decided later, serially per show (core/services/decisions.py). An accepted
request costs one statement: the row is inserted by the statement that checks the show
accepts it (core/booking_sql.py). Only a refused request reads the show again, to say why.
"""

import contextlib
import hashlib
import json
import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core import booking_sql, decision_queue, metrics
from core.context import current_request_id
from core.exceptions import Conflict, ValidationFailed
from core.models import Booking, Show
from core.seating import Layout, label_position
from core.selectors import bookings_set_queue_positions

logger = logging.getLogger("core.bookings")


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
    with created=False. The show is woken only after the row is committed, so a worker
    never sees a booking that could still roll back.
    Raises ValidationFailed (400) or Conflict (409, key reused with another body).
    """
    fingerprint = _fingerprint(show_id=show_id, seats=seats, quantity=quantity)
    booking = Booking(
        user_id=user_id,
        show_id=show_id,
        seats=list(seats or []),
        quantity=len(seats) if seats is not None else quantity or 0,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        request_id=current_request_id() or "",
        created_at=timezone.now(),
    )
    try:
        with _one_statement_each():
            _insert(booking, seats=seats, quantity=quantity)
        # Woken once the row is committed: at once in autocommit, or when the caller's
        # transaction commits.
        transaction.on_commit(lambda: decision_queue.wake_show(show_id=show_id, booking_id=booking.id))
    except ValidationFailed:
        # A replay is answered with the original booking even once the request would no
        # longer be accepted (the show has started since, say).
        replay = idempotency_key and _find_replay(
            user_id=user_id, idempotency_key=idempotency_key, fingerprint=fingerprint
        )
        if replay:
            bookings_set_queue_positions(bookings=[replay])
            return replay, False
        raise
    except IntegrityError:
        # The key was used before (a replay, or two requests racing with one key): the
        # unique (user, idempotency_key) index refused this row, so the first one stands.
        # Looking only after a refusal keeps an ordinary submission to one statement.
        if idempotency_key is None:
            raise
        replay = _find_replay(user_id=user_id, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if replay is None:
            raise
        bookings_set_queue_positions(bookings=[replay])
        return replay, False
    logger.info("booking accepted", extra={"booking_id": str(booking.id), "show_id": show_id})
    metrics.booking_accepted(by_quantity=seats is None)
    return booking, True


def _insert(booking: Booking, *, seats: Sequence[str] | None, quantity: int | None) -> None:
    """Insert the row if the request and the show accept it; raise ValidationFailed otherwise."""
    errors, bounds = _request_errors(seats=seats, quantity=quantity)
    if bounds is not None:
        inserted = booking_sql.insert_if_bookable(booking, bounds=bounds)
        if inserted is not None:
            _mark_inserted(booking, *inserted)
            return
    # Refused: say exactly why. Should the show have changed in between and now accept the
    # request, the row goes in after all.
    show = Show.objects.select_related("screen").filter(pk=booking.show_id).first()
    _add_show_errors(errors, show, seats=seats)
    if errors:
        raise ValidationFailed("The booking request is invalid.", details=errors)
    booking.save(force_insert=True)
    bookings_set_queue_positions(bookings=[booking])


def _request_errors(
    *, seats: Sequence[str] | None, quantity: int | None
) -> tuple[dict[str, list[str]], tuple[int, int] | None]:
    """The request's own faults, whatever the show, and the smallest (rows, seats per row) a
    screen needs to hold it (None when the request has a fault)."""
    limit = settings.BOOKING_MAX_SEATS
    if (seats is None) == (quantity is None):
        return {"non_field_errors": ['Give exactly one of "seats" or "quantity".']}, None
    if seats is None:
        if quantity is None or not 1 <= quantity <= limit:
            return {"quantity": [f"Ask for between 1 and {limit} seats."]}, None
        return {}, (1, 1)
    if not 1 <= len(seats) <= limit:
        return {"seats": [f"Ask for between 1 and {limit} seats."]}, None
    if len(set(seats)) != len(seats):
        return {"seats": ["The same seat is listed more than once."]}, None
    positions = [position for position in map(label_position, seats) if position is not None]
    if len(positions) != len(seats):
        return {}, None  # not a seat of any screen: the show's layout names them
    return {}, (max(row for row, _ in positions) + 1, max(seat for _, seat in positions) + 1)


def _add_show_errors(errors: dict[str, list[str]], show: Show | None, *, seats: Sequence[str] | None) -> None:
    """Why `show` refuses the request: the conditions of booking_sql.insert_if_bookable, read
    back to say which one failed."""
    if show is None:
        errors["show"] = ["Unknown show."]
        return
    if show.status == Show.Status.CANCELLED:
        errors["show"] = ["This show was cancelled."]
    elif show.starts_at <= timezone.now():
        errors["show"] = ["This show has already started."]
    if seats and not errors.keys() & {"seats", "non_field_errors"}:
        layout = Layout(show.screen.rows, show.screen.seats_per_row)
        unknown = [label for label in seats if layout.parse(label) is None]
        if unknown:
            errors["seats"] = [f"Not a seat of this screen: {', '.join(unknown)}."]


def _mark_inserted(booking: Booking, sequence: int, queue_position: int) -> None:
    # The instance now stands for a stored row, as if Model.save() had written it.
    booking.sequence = sequence
    booking.queue_position = queue_position
    booking._state.adding = False
    booking._state.db = connection.alias


def _fingerprint(*, show_id: int, seats: Sequence[str] | None, quantity: int | None) -> str:
    body = json.dumps({"show": show_id, "seats": list(seats) if seats is not None else None, "quantity": quantity})
    return hashlib.sha256(body.encode()).hexdigest()


def _find_replay(*, user_id: int, idempotency_key: str, fingerprint: str) -> Booking | None:
    booking = Booking.objects.filter(user_id=user_id, idempotency_key=idempotency_key).first()
    if booking is not None and booking.request_fingerprint != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body.",
            code="idempotency_key_reused",
            details={"booking": str(booking.id)},
        )
    return booking


def _one_statement_each():
    """No transaction of its own: every write of a submission is one statement, atomic by
    itself, and in autocommit it commits without a COMMIT round trip. Inside a caller's
    transaction, a savepoint keeps a refused row from breaking that transaction."""
    if transaction.get_connection().in_atomic_block:
        return transaction.atomic()
    return contextlib.nullcontext()
