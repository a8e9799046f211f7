"""Admission at the door: a ticket code scanned by staff or a scanner admits once.

Admission is one conditional UPDATE of the ticket's line (`admitted_at` from NULL to now),
whose conditions are the whole rule: the ticket exists, it was not admitted yet, and its
booking is confirmed. Two scans of one code race on the line's row: the second waits for
the first's row lock, PostgreSQL re-checks `admitted_at IS NULL` on the row the first
committed, and the second updates nothing: exactly one scan admits, however many scanners.

The booking's status is the other half of the rule, and a cancel (a refund) changes it in
another transaction. So the UPDATE locks the booking row FOR SHARE (in its CTE) before it
touches the line. FOR SHARE conflicts with the cancel's FOR UPDATE of the booking row, so
whichever commits first wins:
- the check-in first: the cancel waits for the booking row, then sees the admitted ticket
  and refuses (`ticket_admitted`, core/services/cancellation.py);
- the cancel first: the check-in waits for the booking row, PostgreSQL re-checks `status =
  'confirmed'` on the cancelled row, and nothing is admitted (`ticket_void`).
Why not the show row first, like every other transition (core/services/decisions.py)? A
check-in changes no booking's status, and the show row is what every scan of a show would
then queue on, one at a time, behind each other and behind the show's decider: a busy door
would admit one ticket per round trip. FOR SHARE locks of one booking do not conflict with
each other, so scans of different tickets (and of one booking's tickets) run side by side.
It cannot deadlock with the show-first order: a check-in never waits for a show row, and
holds nothing but its booking's share lock while it waits for the line's row, which only
another check-in (holding no lock a cancel or a decider waits for first) can hold.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from django.db import connection, transaction
from django.utils import timezone

from core import metrics, tickets
from core.exceptions import Conflict, NotFound
from core.models import Booking, BookingLine

logger = logging.getLogger("core.bookings")

_BOOKING = Booking._meta.db_table
_LINE = BookingLine._meta.db_table

# The conditional update: the ticket's booking locked FOR SHARE while confirmed, then the
# line admitted while not admitted yet. Both conditions are re-checked by PostgreSQL after
# any wait for a lock (see the module's docstring). Table names come from the models'
# metadata and every value is a parameter (hence nosec B608).
_ADMIT = f"""
    WITH booking AS (
        SELECT id, show_id FROM {_BOOKING}
        WHERE id = (SELECT booking_id FROM {_LINE} WHERE ticket_id = %(ticket)s) AND status = %(confirmed)s
        FOR SHARE
    )
    UPDATE {_LINE} AS line SET admitted_at = now()
    FROM booking
    WHERE line.booking_id = booking.id AND line.ticket_id = %(ticket)s AND line.admitted_at IS NULL
    RETURNING booking.show_id, line.seat_label, line.admitted_at
"""  # noqa: S608  # nosec B608
_STATE = f"""
    SELECT booking.status, line.admitted_at FROM {_LINE} AS line
    JOIN {_BOOKING} AS booking ON booking.id = line.booking_id
    WHERE line.ticket_id = %(ticket)s
"""  # noqa: S608  # nosec B608


@dataclass(frozen=True)
class Admission:
    show_id: int
    seat: str
    admitted_at: datetime


def ticket_admit(*, code: str) -> Admission:
    """Admit the ticket of `code`: its line's `admitted_at` goes from NULL to now, once.

    Raises NotFound (`ticket_not_found`) for a code this service did not sign (before any
    query) or a ticket that does not exist; Conflict `already_admitted` (details: the first
    `admitted_at`) when it was admitted before; Conflict `ticket_void` when its booking is
    not confirmed (cancelled, refunded, expired, or never paid).
    """
    ticket_id = tickets.ticket_id_from_code(code)
    if ticket_id is None:
        _refuse("not_found")
    params: dict[str, Any] = {"ticket": ticket_id, "confirmed": str(Booking.Status.CONFIRMED)}
    # Twice at most: a booking confirmed between the update and the look at why it updated
    # nothing (a payment landing that very moment) is admitted by the second try.
    for _ in range(2):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_ADMIT, params)
            row = cursor.fetchone()
        if row is not None:
            admission = Admission(show_id=row[0], seat=row[1], admitted_at=row[2])
            metrics.ticket_checked_in(outcome="admitted")
            logger.info("ticket admitted", extra={"show_id": admission.show_id, "seat": admission.seat})
            return admission
        with connection.cursor() as cursor:
            cursor.execute(_STATE, params)
            state = cursor.fetchone()
        if state is None:
            _refuse("not_found")
        status, admitted_at = state
        if status != Booking.Status.CONFIRMED:
            _refuse("ticket_void", status=status)
        if admitted_at is not None:
            _refuse("already_admitted", admitted_at=admitted_at)
    # A booking becomes confirmed once and then only leaves it (cancelled): the second try
    # admits or finds the reason. Getting here is a bug.
    raise AssertionError(f"ticket {ticket_id} of a confirmed booking was neither admitted nor refused")


def _refuse(outcome: str, *, status: str | None = None, admitted_at: datetime | None = None) -> NoReturn:
    metrics.ticket_checked_in(outcome=outcome)
    if outcome == "not_found":
        raise NotFound("No such ticket.", code="ticket_not_found")
    if outcome == "already_admitted" and admitted_at is not None:
        # The same rendering as every timestamp of the API (DRF's iso-8601 in TIME_ZONE).
        first = timezone.localtime(admitted_at).isoformat().replace("+00:00", "Z")
        raise Conflict("This ticket was admitted already.", code="already_admitted", details={"admitted_at": first})
    raise Conflict(
        "This ticket is void: its booking is not confirmed (cancelled, refunded or expired).",
        code="ticket_void",
        details={"booking_status": str(status)},
    )
