"""The statements of the hot paths, written in SQL.

Each runs once per booking request, per poll, per seat-map read or per decided batch, and
the ORM spent longer building them than PostgreSQL spent running them (or, for a batch,
would send one placeholder per value and a CASE per column that grows with the batch).
Everything else goes through the ORM. The table names come from the models' metadata,
never from input, and every value is a query parameter: hence the `nosec B608` marks.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection

from core.models import BookedSeat, Booking, Screen, Show

_BOOKING = Booking._meta.db_table
_SEAT = BookedSeat._meta.db_table
_SHOW = Show._meta.db_table
_SCREEN = Screen._meta.db_table

# The columns a submission writes, in the order of insert_if_bookable's values.
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


def queue_ahead_sql(*, show: str, sequence: str) -> str:
    """SQL counting the pending bookings of show `show` accepted before `sequence` (SQL
    expressions written by the caller, never input): acceptance order is `sequence`, so
    these are the bookings decided first.

    It is a range scan of booking_pending_show_idx ((show, sequence) of pending bookings
    only), which holds just the bookings still waiting, so it needs no index of its own;
    but it reads one entry per booking ahead, and a backlog (workers stopped) would make
    every submission and poll pay for the whole queue. It stops at
    BOOKING_QUEUE_POSITION_LIMIT: past that, a position reads as the limit."""
    limit = int(settings.BOOKING_QUEUE_POSITION_LIMIT)
    return (
        f"SELECT count(*) FROM (SELECT FROM {_BOOKING} ahead WHERE ahead.show_id = {show} "  # noqa: S608  # nosec B608
        f"AND ahead.status = '{Booking.Status.PENDING}' AND ahead.sequence < {sequence} LIMIT {limit}) ahead"
    )


def queue_positions(*, show_ids: Sequence[int], sequences: Sequence[int]) -> list[int]:
    """The queue position of each (show, sequence) pair, in order, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ({queue_ahead_sql(show='q.show_id', sequence='q.sequence')}) "  # noqa: S608  # nosec B608
            "FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY AS q(show_id, sequence, n) ORDER BY q.n",
            [list(show_ids), list(sequences)],
        )
        return [position for (position,) in cursor.fetchall()]


def seat_map_row(*, show_id: int) -> tuple[int, int, list[str]] | None:
    """A show's (rows, seats per row, held seat labels) in one statement, or None."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.rows, c.seats_per_row, ARRAY(SELECT seat_label FROM {_SEAT} b "  # noqa: S608  # nosec B608
            f"WHERE b.show_id = s.id) FROM {_SHOW} s JOIN {_SCREEN} c ON c.id = s.screen_id WHERE s.id = %s",
            [show_id],
        )
        row = cursor.fetchone()
    return (row[0], row[1], list(row[2])) if row else None


def insert_if_bookable(booking: Booking, *, bounds: tuple[int, int]) -> tuple[int, int] | None:
    """Insert the pending row in the same statement that checks the show accepts it (exists,
    is not cancelled, has not started, its screen has at least `bounds` rows and seats per
    row); returns the new row's (sequence, queue position), or None when the show refused it.

    The queue position is counted in the INSERT itself, on the statement's snapshot: the
    bookings of the show committed as pending before this one."""
    values: list[Any] = [
        str(booking.id),
        booking.user_id,
        booking.show_id,
        str(Booking.Status.PENDING),
        booking.seats,
        booking.quantity,
        booking.idempotency_key,
        booking.request_fingerprint,
        booking.decide_attempts,
        booking.created_at,
        booking.request_id,
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_BOOKING} AS b ({', '.join(_INSERT_COLUMNS)}) "  # noqa: S608  # nosec B608
            "SELECT %s::uuid, %s, %s, %s::varchar, %s::varchar(4)[], %s, %s::varchar, %s::varchar, %s, %s, %s::varchar "
            f"FROM {_SHOW} s JOIN {_SCREEN} c ON c.id = s.screen_id "
            "WHERE s.id = %s AND s.status <> %s AND s.starts_at > %s AND c.rows >= %s AND c.seats_per_row >= %s "
            f"RETURNING b.sequence, ({queue_ahead_sql(show='b.show_id', sequence='b.sequence')})",
            [*values, booking.show_id, str(Show.Status.CANCELLED), booking.created_at, *bounds],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def write_decisions(*, show_id: int, bookings: Sequence[Booking], held: Sequence[BookedSeat], now: datetime) -> None:
    """Write a decided batch in two statements whatever its size: the held seats, then every
    booking's outcome, from arrays unnested server-side."""
    confirmed = Booking.Status.CONFIRMED
    with connection.cursor() as cursor:
        if held:
            # The unique (show, seat_label) constraint is the last line: should anything
            # above be wrong, this insert fails and the whole batch rolls back, leaving the
            # rows pending.
            cursor.execute(
                f"INSERT INTO {_SEAT} (show_id, seat_label, booking_id) "  # noqa: S608  # nosec B608
                "SELECT %s, label, booking FROM unnest(%s::varchar[], %s::uuid[]) AS t(label, booking)",
                [show_id, [seat.seat_label for seat in held], [str(seat.booking_id) for seat in held]],
            )
        # A failed booking keeps the seats it asked for; a confirmed one gets those it holds.
        cursor.execute(
            f"UPDATE {_BOOKING} AS b SET status = v.status, failure_reason = v.reason, "  # noqa: S608  # nosec B608
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
