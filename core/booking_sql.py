"""The statements of the hot paths, written in SQL.

Each runs once per booking request, per poll, per seat-map read or per decided batch, and
the ORM spent longer building them than PostgreSQL spent running them (or, for a batch,
would send one placeholder per value and a CASE per column that grows with the batch).
Everything else goes through the ORM. The table names come from the models' metadata,
never from input, and every value is a query parameter: hence the `nosec B608` marks.
"""

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection

from core.models import (
    OPEN_STATUSES,
    SEAT_HOLDING_STATUSES,
    BookedSeat,
    Booking,
    Screen,
    Show,
    ShowPrice,
    WebhookDelivery,
    WebhookEndpoint,
)

_BOOKING = Booking._meta.db_table
_SEAT = BookedSeat._meta.db_table
_SHOW = Show._meta.db_table
_SCREEN = Screen._meta.db_table
_PRICE = ShowPrice._meta.db_table
_DELIVERY = WebhookDelivery._meta.db_table
_ENDPOINT = WebhookEndpoint._meta.db_table

# A booking as partner webhooks carry it (README "Partner webhooks"), from a row `b` of
# core_booking or of an UPDATE's RETURNING; timestamps in ISO 8601, money a decimal string.
_EVENT_BOOKING_JSON = (
    "jsonb_build_object('id', b.id, 'status', b.status, 'show', b.show_id, 'seats', to_jsonb(b.seats), "
    "'quantity', b.quantity, 'failure_reason', b.failure_reason, 'reference', b.reference, "
    "'total', b.total::text, 'currency', b.currency, 'created_at', b.created_at, "
    "'decided_at', b.decided_at, 'confirmed_at', b.confirmed_at, 'cancelled_at', b.cancelled_at)"
)


def events_insert_sql(source: str) -> str:
    """SQL inserting one pending delivery per event of `source` (a CTE or subquery name with
    columns `ord`, `event`, `b` the booking row) per active endpoint, returning 1 per row.

    Parameters: the event time (three times). An event gets one id for every endpoint (partners
    de-duplicate on it), drawn once in a MATERIALIZED CTE. With no active endpoint the join
    is empty and nothing is built or written."""
    return (
        f"ev_ids AS MATERIALIZED (SELECT gen_random_uuid() AS event_id, s.* FROM {source} s), "  # noqa: S608  # nosec B608
        f"ins AS (INSERT INTO {_DELIVERY} (endpoint_id, event_id, event, booking_id, payload, status, "
        "attempts, next_attempt_at, created_at, last_error) "
        "SELECT e.id, ev.event_id, ev.event, (ev.b).id, jsonb_build_object('id', ev.event_id, 'type', ev.event, "
        f"'created_at', %s::timestamptz, 'data', jsonb_build_object('booking', "
        f"(SELECT {_EVENT_BOOKING_JSON} FROM (SELECT (ev.b).*) b))), "
        f"'{WebhookDelivery.Status.PENDING}', 0, %s::timestamptz, %s::timestamptz, '' "
        f"FROM ev_ids ev CROSS JOIN {_ENDPOINT} e WHERE e.is_active ORDER BY ev.ord, e.id RETURNING 1) "
    )


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
    "tickets",
    "seat_category",
    "accessible",
)
_INSERT_PLACEHOLDERS = (
    "%s::uuid, %s, %s, %s::varchar, %s::varchar(4)[], %s, %s::varchar, %s::varchar, %s, %s, %s::varchar, "
    "%s::jsonb, %s::varchar, %s::boolean"
)

# The user's pending-bookings limit, checked race-free: a transaction-scoped advisory lock per
# user, then the INSERT that counts the user's pending bookings. Sent as one query string,
# the two statements run as one implicit transaction (committed at its end in autocommit,
# so still one round trip), and the INSERT, a later statement, takes its snapshot after the
# lock is held: it sees every pending booking that an earlier holder committed.
_PENDING_LOCK = "SELECT pg_advisory_xact_lock(%s, %s); "
_UNDER_PENDING_LIMIT = f"(SELECT count(*) FROM {_BOOKING} WHERE user_id = %s AND status = ANY(%s)) < %s"  # noqa: S608  # nosec B608


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


def seat_map_row(*, show_id: int, with_prices: bool = False) -> tuple | None:
    """A show's (rows, seats per row, held seat labels, premium rows, accessible seats,
    companion seats, explicit prices or None) in one statement, or None. The prices (with
    `with_prices`) are "type|category|amount" strings: text keeps the amounts exact."""
    return seat_map_rows(show_ids=[show_id], with_prices=with_prices).get(show_id)


def seat_map_rows(*, show_ids: Sequence[int], with_prices: bool = False) -> dict[int, tuple]:
    """seat_map_row of each of `show_ids` that exists, by show id, in one statement."""
    prices = (
        f"ARRAY(SELECT p.ticket_type || '|' || p.seat_category || '|' || p.amount::text "  # noqa: S608  # nosec B608
        f"FROM {_PRICE} p WHERE p.show_id = s.id)"
        if with_prices
        else "NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.id, c.rows, c.seats_per_row, ARRAY(SELECT seat_label FROM {_SEAT} b "  # noqa: S608  # nosec B608
            f"WHERE b.show_id = s.id), c.premium_rows, c.accessible_seats, c.companion_seats, {prices} "
            f"FROM {_SHOW} s JOIN {_SCREEN} c ON c.id = s.screen_id WHERE s.id = ANY(%s::bigint[])",
            [list(show_ids)],
        )
        rows = cursor.fetchall()
    return {row[0]: (row[1], row[2], list(row[3]), row[4], row[5], row[6], row[7]) for row in rows}


def pending_rows_sql(columns: Sequence[str]) -> str:
    """SQL selecting `columns` (column names of the model, never input) of the pending
    bookings of several shows, locked FOR UPDATE, oldest accepted first per show and at
    most a limit per show, the shows in the order given. Parameters: the show ids (a
    bigint array), the limit. Each show is a range scan of booking_pending_show_idx."""
    inner = ", ".join(f"x.{column}" for column in columns)
    outer = ", ".join(f"b.{column}" for column in columns)
    return (
        f"SELECT {outer} FROM unnest(%s::bigint[]) WITH ORDINALITY AS s(id, n) "  # noqa: S608  # nosec B608
        f"CROSS JOIN LATERAL (SELECT {inner}, x.sequence AS sequence_ FROM {_BOOKING} x "
        f"WHERE x.show_id = s.id AND x.status = '{Booking.Status.PENDING}' ORDER BY x.sequence LIMIT %s "
        "FOR UPDATE) b ORDER BY s.n, b.sequence_"
    )


def _insert_values(booking: Booking) -> list[Any]:
    return [
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
        json.dumps(booking.tickets),
        booking.seat_category,
        booking.accessible,
    ]


def _pending_limit_params(booking: Booking, *, namespace: int, limit: int) -> tuple[list[Any], list[Any]]:
    """Parameters of _PENDING_LOCK and of _UNDER_PENDING_LIMIT."""
    return [namespace, booking.user_id], [booking.user_id, [str(s) for s in OPEN_STATUSES], limit]


def insert_if_bookable(
    booking: Booking, *, bounds: tuple[int, int], lock_namespace: int, pending_limit: int
) -> tuple[int, int] | None:
    """Insert the pending row in the same statement that checks the show accepts it (exists,
    is not cancelled, has not started, its screen has at least `bounds` rows and seats per
    row, no companion seat is asked for without a wheelchair space) and the user has fewer
    than `pending_limit` bookings pending; returns the new row's (sequence, queue position),
    or None when refused.

    The queue position is counted in the INSERT itself, on the statement's snapshot: the
    bookings of the show committed as pending before this one."""
    lock_params, limit_params = _pending_limit_params(booking, namespace=lock_namespace, limit=pending_limit)
    labels = list(booking.seats or [])
    with connection.cursor() as cursor:
        cursor.execute(
            _PENDING_LOCK + f"INSERT INTO {_BOOKING} AS b ({', '.join(_INSERT_COLUMNS)}) "  # noqa: S608  # nosec B608
            f"SELECT {_INSERT_PLACEHOLDERS} "
            f"FROM {_SHOW} s JOIN {_SCREEN} c ON c.id = s.screen_id "
            "WHERE s.id = %s AND s.status <> %s AND s.starts_at > %s AND c.rows >= %s AND c.seats_per_row >= %s "
            "AND (NOT c.companion_seats && %s::varchar[] OR c.accessible_seats && %s::varchar[]) "
            f"AND {_UNDER_PENDING_LIMIT} "
            f"RETURNING b.sequence, ({queue_ahead_sql(show='b.show_id', sequence='b.sequence')})",
            [
                *lock_params,
                *_insert_values(booking),
                booking.show_id,
                str(Show.Status.CANCELLED),
                booking.created_at,
                *bounds,
                labels,
                labels,
                *limit_params,
            ],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def insert_pending(booking: Booking, *, lock_namespace: int, pending_limit: int) -> tuple[int, int] | None:
    """Insert the pending row (the request and the show were just checked) unless the user
    has `pending_limit` bookings pending; its (sequence, queue position), or None then."""
    lock_params, limit_params = _pending_limit_params(booking, namespace=lock_namespace, limit=pending_limit)
    with connection.cursor() as cursor:
        cursor.execute(
            _PENDING_LOCK + f"INSERT INTO {_BOOKING} AS b ({', '.join(_INSERT_COLUMNS)}) "  # nosec B608
            f"SELECT {_INSERT_PLACEHOLDERS} WHERE {_UNDER_PENDING_LIMIT} "
            f"RETURNING b.sequence, ({queue_ahead_sql(show='b.show_id', sequence='b.sequence')})",
            [*lock_params, *_insert_values(booking), *limit_params],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def write_decisions(
    *,
    bookings: Sequence[Booking],
    held: Sequence[BookedSeat],
    now: datetime,
    write_lines: Callable[[Any], None] | None = None,
) -> int:
    """Write a decided batch (of one show or several) in three statements whatever its size:
    the held seats (each with its own show), the sold
    lines (`write_lines(cursor)`), then every booking's outcome (with its reference, total,
    currency and, when held, its deadline), from arrays unnested server-side.

    The outcome's UPDATE also writes the partner webhooks' outbox in the same statement
    (`booking.confirmed` / `booking.failed` per active endpoint, core.services.partner_events;
    a hold is no event, its payment is): no extra round trip, and nothing written when no
    endpoint is active. Returns how many deliveries it recorded."""
    won = [str(status) for status in SEAT_HOLDING_STATUSES]
    with connection.cursor() as cursor:
        if held:
            # The unique (show, seat_label) constraint is the last line: should anything
            # above be wrong, this insert fails and the whole batch rolls back, leaving the
            # rows pending.
            cursor.execute(
                f"INSERT INTO {_SEAT} (show_id, seat_label, booking_id) "  # noqa: S608  # nosec B608
                "SELECT show_id, label, booking FROM unnest(%s::bigint[], %s::varchar[], %s::uuid[]) "
                "AS t(show_id, label, booking)",
                [
                    [seat.show_id for seat in held],
                    [seat.seat_label for seat in held],
                    [str(seat.booking_id) for seat in held],
                ],
            )
            if write_lines is not None:
                write_lines(cursor)
        # A failed booking keeps the seats it asked for; a won one gets those it holds.
        cursor.execute(
            f"WITH upd AS (UPDATE {_BOOKING} AS b SET status = v.status, failure_reason = v.reason, "  # noqa: S608  # nosec B608
            "decided_at = %s, confirmed_at = v.confirmed_at, hold_expires_at = v.hold_expires_at, "
            "seats = CASE WHEN v.status = ANY(%s) THEN string_to_array(v.seats, ',')::varchar(4)[] ELSE b.seats END, "
            "reference = v.reference, total = v.total, currency = v.currency "
            "FROM unnest(%s::uuid[], %s::varchar[], %s::varchar[], %s::text[], %s::varchar[], %s::numeric[], "
            "%s::varchar[], %s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY "
            "AS v(id, status, reason, seats, reference, total, currency, confirmed_at, hold_expires_at, ord) "
            "WHERE b.id = v.id RETURNING v.ord, b), "
            f"src AS (SELECT u.ord, CASE (u.b).status WHEN '{Booking.Status.CONFIRMED}' THEN '{_CONFIRMED_EVENT}' "
            f"ELSE '{_FAILED_EVENT}' END AS event, u.b FROM upd u "
            f"WHERE (u.b).status IN ('{Booking.Status.CONFIRMED}', '{Booking.Status.FAILED}')), "
            f"{events_insert_sql('src')}SELECT count(*) FROM ins",
            [
                now,
                won,
                [str(b.pk) for b in bookings],
                [str(b.status) for b in bookings],
                [str(b.failure_reason) if b.failure_reason else None for b in bookings],
                [",".join(b.seats) if b.status in won else "" for b in bookings],
                [b.reference if b.status in won else None for b in bookings],
                [b.total if b.status in won else None for b in bookings],
                [b.currency if b.status in won else None for b in bookings],
                [b.confirmed_at if b.status == Booking.Status.CONFIRMED else None for b in bookings],
                [b.hold_expires_at if b.status == Booking.Status.HELD else None for b in bookings],
                now,
                now,
                now,
            ],
        )
        return cursor.fetchone()[0]


_CONFIRMED_EVENT = WebhookDelivery.Event.CONFIRMED.value
_FAILED_EVENT = WebhookDelivery.Event.FAILED.value


def record_events(*, booking_ids: str, params: Sequence[Any], event: str, now: datetime) -> int:
    """Record `event` for the bookings whose ids the SQL `booking_ids` (with `params`)
    selects, read as they are now in this transaction; returns the deliveries written."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH src AS (SELECT row_number() OVER (ORDER BY b.sequence) AS ord, %s::varchar AS event, b "  # noqa: S608  # nosec B608
            f"FROM {_BOOKING} b WHERE b.id IN ({booking_ids}) AND EXISTS (SELECT FROM {_ENDPOINT} WHERE is_active)), "
            f"{events_insert_sql('src')}SELECT count(*) FROM ins",
            [event, *params, now, now, now],
        )
        return cursor.fetchone()[0]
