"""Writes of a booking's life: submit, decide, cancel, recover.

Submission only writes a pending row and queues a wake-up after commit; the seats are
decided later, serially per show, by `booking_decide_batch` under the show's row lock
(the workers add a Redis lock on top so that only one process drains a show at a time).

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

import contextlib
import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core import db_errors, metrics
from core.context import current_request_id
from core.exceptions import Conflict, NotFound, ValidationFailed
from core.models import BookedSeat, Booking, Screen, Show
from core.seating import Layout, SeatAllocator, label_position
from core.selectors import bookings_set_queue_positions, bookings_visible_to, queue_ahead_sql, show_layout_and_held

# A few hot statements are written in SQL (marked `nosec B608`): the table names in them come
# from the models' metadata, never from input, and every value is a query parameter.

logger = logging.getLogger("core.bookings")

Status = Booking.Status
Reason = Booking.FailureReason


def _fingerprint(*, show_id: int, seats: Sequence[str] | None, quantity: int | None) -> str:
    body = json.dumps({"show": show_id, "seats": list(seats) if seats is not None else None, "quantity": quantity})
    return hashlib.sha256(body.encode()).hexdigest()


class _ShowFacts(NamedTuple):
    """What submission checks about a show."""

    status: str
    starts_at: datetime
    rows: int
    seats_per_row: int


def _show_facts(show_id: int) -> _ShowFacts | None:
    # One primary-key join issued directly: building it with the ORM cost more than running it.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.status, s.starts_at, c.rows, c.seats_per_row FROM {Show._meta.db_table} s "  # noqa: S608  # nosec B608
            f"JOIN {Screen._meta.db_table} c ON c.id = s.screen_id WHERE s.id = %s",
            [show_id],
        )
        row = cursor.fetchone()
    return _ShowFacts(*row) if row else None


def _check_request(*, show: _ShowFacts | None, seats: Sequence[str] | None, quantity: int | None) -> None:
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
            layout = Layout(show.rows, show.seats_per_row)
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
    booking = Booking(
        user_id=user_id,
        show_id=show_id,
        seats=list(seats or []),
        quantity=len(seats) if seats is not None else quantity,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        request_id=current_request_id() or "",
        created_at=timezone.now(),
    )
    try:
        with _one_statement_each():
            if not _insert_if_bookable(booking, seats=seats, quantity=quantity):
                # Refused by the show or its layout, or invalid on its face: say exactly
                # why; should the show have changed in between, the check passes and the
                # row goes in after all.
                _check_request(show=_show_facts(show_id), seats=seats, quantity=quantity)
                _insert_pending(booking)
        # Queued once the row is committed: at once in autocommit, or when the caller's
        # transaction commits.
        transaction.on_commit(lambda: _queue_decision(show_id=show_id, booking_id=booking.id))
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


def _one_statement_each():
    """No transaction of its own: every write of a submission is one statement, atomic by
    itself, and in autocommit it commits without a COMMIT round trip. Inside a caller's
    transaction, a savepoint keeps a refused row from breaking that transaction."""
    if transaction.get_connection().in_atomic_block:
        return transaction.atomic()
    return contextlib.nullcontext()


def _request_bounds(*, seats: Sequence[str] | None, quantity: int | None) -> tuple[int, int] | None:
    """The smallest (rows, seats per row) a screen needs for this request, or None when
    the request is invalid whatever the show (the full check then says why)."""
    limit = settings.BOOKING_MAX_SEATS
    if (seats is None) == (quantity is None):
        return None
    if seats is None:
        return (1, 1) if 1 <= quantity <= limit else None
    if not 1 <= len(seats) <= limit or len(set(seats)) != len(seats):
        return None
    positions = [label_position(label) for label in seats]
    if None in positions:
        return None
    return max(row for row, _ in positions) + 1, max(seat for _, seat in positions) + 1


def _insert_if_bookable(booking: Booking, *, seats: Sequence[str] | None, quantity: int | None) -> bool:
    """Insert the pending row in the same statement that checks the show accepts it (exists,
    not cancelled, not started, every seat on its screen); False if it does not."""
    bounds = _request_bounds(seats=seats, quantity=quantity)
    if bounds is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Booking._meta.db_table} AS b ({', '.join(_INSERT_COLUMNS)}) "  # noqa: S608  # nosec B608
            "SELECT %s::uuid, %s, %s, %s::varchar, %s::varchar(4)[], %s, %s::varchar, %s::varchar, %s, %s, %s::varchar "
            f"FROM {Show._meta.db_table} s JOIN {Screen._meta.db_table} c ON c.id = s.screen_id "
            "WHERE s.id = %s AND s.status <> %s AND s.starts_at > %s AND c.rows >= %s AND c.seats_per_row >= %s "
            f"RETURNING {_returning()}",
            [
                *_insert_values(booking),
                booking.show_id,
                str(Show.Status.CANCELLED),
                booking.created_at,
                *bounds,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    _mark_inserted(booking, sequence=row[0], queue_position=row[1])
    return True


_INSERT_COLUMNS = (
    "id",
    "user_id",
    "show_id",
    "status",
    "seats",
    "quantity",
    "idempotency_key",
    "request_fingerprint",
    "decide_attempts",
    "created_at",
    "request_id",
)


def _insert_values(booking: Booking) -> list:
    return [
        str(booking.id),
        booking.user_id,
        booking.show_id,
        str(Status.PENDING),
        booking.seats,
        booking.quantity,
        booking.idempotency_key,
        booking.request_fingerprint,
        booking.decide_attempts,
        booking.created_at,
        booking.request_id,
    ]


def _insert_pending(booking: Booking) -> None:
    """INSERT the pending row unconditionally (the request was just checked)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Booking._meta.db_table} AS b ({', '.join(_INSERT_COLUMNS)}) "  # noqa: S608  # nosec B608
            f"VALUES ({', '.join(['%s'] * len(_INSERT_COLUMNS))}) RETURNING {_returning()}",
            _insert_values(booking),
        )
        sequence, queue_position = cursor.fetchone()
    _mark_inserted(booking, sequence=sequence, queue_position=queue_position)


def _returning() -> str:
    # The new row's acceptance order and its queue position, counted in the INSERT itself
    # so that an accepted booking still costs one round trip. The count runs on the
    # statement's snapshot: the bookings of the show committed as pending before this one.
    return f"b.sequence, ({queue_ahead_sql(show='b.show_id', sequence='b.sequence')})"


def _mark_inserted(booking: Booking, *, sequence: int, queue_position: int) -> None:
    # The instance now stands for a stored row, as if Model.save() had written it (built by
    # hand: save() spends longer building its statement than PostgreSQL running it).
    booking.sequence = sequence
    booking.queue_position = queue_position
    booking._state.adding = False
    booking._state.db = connection.alias


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

    layout, taken = show_layout_and_held(show_id=show.pk)
    allocator = SeatAllocator(layout, taken)
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
    # The screen is read after this lock is held (in _decide), never joined here.
    show = _locked_shows().filter(pk=show_id).first()
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
        )[:limit]
    )
    if not bookings:
        return []
    now = timezone.now()
    held = _decide(bookings=bookings, show=show, now=now)
    _write_decisions(show_id=show_id, bookings=bookings, held=held, now=now)
    transaction.on_commit(lambda: metrics.bookings_decided(bookings, now=now))
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


def _write_decisions(*, show_id: int, bookings: list[Booking], held: list[BookedSeat], now: datetime) -> None:
    """Write a decided batch in two statements whatever its size: the held seats, then every
    booking's outcome. Arrays are unnested server-side; bulk_create/bulk_update would send
    one placeholder per value and, for the update, a CASE per column whose length grows
    with the batch."""
    confirmed = Status.CONFIRMED
    # Table names come from the models, never from input; every value is a parameter.
    with connection.cursor() as cursor:
        if held:
            # The unique (show, seat_label) constraint is the last line: should anything
            # above be wrong, this insert fails and the whole batch rolls back, leaving the
            # rows pending.
            cursor.execute(
                f"INSERT INTO {BookedSeat._meta.db_table} (show_id, seat_label, booking_id) "  # noqa: S608  # nosec B608
                "SELECT %s, label, booking FROM unnest(%s::varchar[], %s::uuid[]) AS t(label, booking)",
                [show_id, [seat.seat_label for seat in held], [str(seat.booking_id) for seat in held]],
            )
        # A failed booking keeps the seats it asked for; a confirmed one gets those it holds.
        cursor.execute(
            f"UPDATE {Booking._meta.db_table} AS b SET status = v.status, failure_reason = v.reason, "  # noqa: S608  # nosec B608
            "decided_at = %s, confirmed_at = CASE WHEN v.status = %s THEN %s::timestamptz END, "
            "seats = CASE WHEN v.status = %s THEN string_to_array(v.seats, ',')::varchar(4)[] ELSE b.seats END "
            "FROM unnest(%s::uuid[], %s::varchar[], %s::varchar[], %s::text[]) AS v(id, status, reason, seats) "
            "WHERE b.id = v.id",
            [
                now,
                str(confirmed),
                now,
                str(confirmed),
                [str(b.pk) for b in bookings],
                [str(b.status) for b in bookings],
                [str(b.failure_reason) if b.failure_reason else None for b in bookings],
                [",".join(b.seats) if b.status == confirmed else "" for b in bookings],
            ],
        )


def _locked_shows():
    """Shows locked FOR NO KEY UPDATE: the first lock of every booking transition (see the
    module's docstring). It conflicts with itself and with any change of the show row, not
    with the KEY SHARE lock of a new booking's foreign key check."""
    return Show.objects.select_for_update(no_key=True, of=("self",))


# Errors that may say PostgreSQL is unreachable or busy, not that a booking is broken: the
# caller retries the whole drain later instead of blaming a booking (see core.db_errors).
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


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
        if not _locked_shows().filter(pk=show_id).exists():
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
            _fail(booking, Reason.PROCESSING_ERROR, timezone.now())
            booking.save(update_fields=["status", "failure_reason", "decided_at"])
            transaction.on_commit(lambda: metrics.bookings_decided([booking], now=booking.decided_at))
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


@transaction.atomic
def booking_cancel(*, booking_id, user) -> Booking:
    """Cancel a booking of `user` (staff: anyone's) and free its seats in this transaction.

    pending or confirmed -> cancelled; cancelled stays as it is. Raises NotFound when the
    booking is not visible to the user, Conflict when it failed or its show has started.
    The booking's show is locked before the booking (the lock order), so a cancel queues
    behind a decision or a show's cancellation of the same show instead of deadlocking it.
    """
    visible = bookings_visible_to(user=user).filter(pk=booking_id)
    show = _locked_shows().filter(pk__in=visible.values("show_id")).first()
    booking = visible.select_for_update(of=("self",)).first() if show is not None else None
    if booking is None:
        raise NotFound("Booking not found.")
    booking.show = show
    if booking.status == Status.CANCELLED:
        return booking
    if booking.status == Status.FAILED:
        raise Conflict("A failed booking cannot be cancelled.", code="booking_failed")
    if show.starts_at <= timezone.now():
        raise Conflict("The show has already started.", code="show_started")
    # Deleting the held seats in the same transaction frees them for the very next decision.
    BookedSeat.objects.filter(booking_id=booking.pk).delete()
    booking.status = Status.CANCELLED
    booking.cancelled_at = timezone.now()
    booking.save(update_fields=["status", "cancelled_at"])
    transaction.on_commit(lambda: metrics.bookings_cancelled(1, by="user"))
    logger.info("booking cancelled", extra={"booking_id": str(booking.id), "show_id": booking.show_id})
    return booking


@transaction.atomic
def bookings_expire_started() -> int:
    """Fail every booking still pending for a show that has started (`show_started`).

    The started shows with pending bookings are locked first, in id order (the lock order),
    skipping those locked right now: their decider (or their cancellation) settles those
    bookings itself, and the next sweep looks again. Then one UPDATE whose `status =
    'pending'` condition is on the updated rows, so that it cannot overwrite a booking that
    a decision confirmed meanwhile.
    """
    now = timezone.now()
    show_ids = list(
        Show.objects.select_for_update(no_key=True, of=("self",), skip_locked=True)
        .filter(starts_at__lte=now, pk__in=Booking.objects.filter(status=Status.PENDING).values("show_id"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not show_ids:
        return 0
    # No join in this update: Django would turn one into `WHERE id IN (subquery)`.
    expired = Booking.objects.filter(show_id__in=show_ids, status=Status.PENDING).update(
        status=Status.FAILED, failure_reason=Reason.SHOW_STARTED, decided_at=now
    )
    if expired:
        transaction.on_commit(lambda: metrics.bookings_failed(expired, reason=Reason.SHOW_STARTED))
        logger.info("pending bookings of started shows failed", extra={"count": expired})
    return expired
