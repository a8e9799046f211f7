"""The contract's invariants, checked in SQL after a scenario. Each check returns a list of
violations (human-readable strings); an empty list means the invariant held."""

from collections import Counter
from dataclasses import dataclass

from django.db import connection

FINAL = {"confirmed", "failed", "cancelled"}


@dataclass
class Submitted:
    """What the client knows about one accepted booking."""

    booking_id: str
    request: dict
    sent: float  # client clock, just before the POST that got the 202 was sent
    received: float  # client clock, when that 202 was read
    final: dict | None = None  # the last body polled
    token: str = ""  # the owner's access token
    queue_position: int | None = None  # as the 202 said
    polls: int = 0  # GETs of the Location until final


def _rows(query: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def check_show(show_id: int, *, capacity: int, submitted: list[Submitted] | None = None) -> tuple[list[str], dict]:
    """Every seat invariant of one show, and (with `submitted`) that what the clients were
    told matches the database and that acceptance order was respected. Returns
    (violations, facts)."""
    bookings = _rows(
        "SELECT id::text, status, seats, quantity, failure_reason, sequence, decided_at "
        "FROM core_booking WHERE show_id = %s",
        [show_id],
    )
    held_rows = _rows("SELECT booking_id::text, seat_label FROM core_bookedseat WHERE show_id = %s", [show_id])
    violations: list[str] = []
    by_id = {row[0]: row for row in bookings}

    pending = [row[0] for row in bookings if row[1] not in FINAL]
    if pending:
        violations.append(f"show {show_id}: {len(pending)} bookings not final (e.g. {pending[0]})")

    seat_holders = Counter(label for _, label in held_rows)
    twice = [label for label, n in seat_holders.items() if n > 1]
    if twice:
        violations.append(f"show {show_id}: seats held twice in BookedSeat: {twice[:5]}")
    confirmed_seats = Counter(seat for row in bookings if row[1] == "confirmed" for seat in row[2])
    twice = [label for label, n in confirmed_seats.items() if n > 1]
    if twice:
        violations.append(f"show {show_id}: seats in two confirmed bookings: {twice[:5]}")
    held = len(held_rows)
    if held > capacity:
        violations.append(f"show {show_id}: {held} seats held, capacity {capacity}")
    free = capacity - held

    held_by: dict[str, list[str]] = {}
    for booking_id, label in held_rows:
        held_by.setdefault(booking_id, []).append(label)
    taken = set(seat_holders)
    for booking_id, status, seats, quantity, reason, _, _ in bookings:
        if status == "confirmed":
            if sorted(held_by.get(booking_id, [])) != sorted(seats) or len(seats) != quantity:
                violations.append(f"booking {booking_id}: confirmed seats {seats} differ from held seats")
        elif held_by.get(booking_id):
            violations.append(f"booking {booking_id}: {status} but holds seats")
        if status == "failed" and reason == "sold_out" and quantity <= free:
            violations.append(f"booking {booking_id}: sold_out for {quantity} seats while {free} are still free")
        if status == "failed" and reason == "seats_unavailable" and not set(seats) & taken:
            violations.append(f"booking {booking_id}: seats_unavailable but none of {seats} is held")
        if status == "failed" and reason not in ("sold_out", "seats_unavailable"):
            violations.append(f"booking {booking_id}: failed with unexpected reason {reason}")

    facts = {
        "bookings": len(bookings),
        "confirmed": sum(1 for row in bookings if row[1] == "confirmed"),
        "failed": sum(1 for row in bookings if row[1] == "failed"),
        "held": held,
        "capacity": capacity,
        "sold_out": held == capacity,
    }
    if submitted is not None:
        violations += _check_client_view(show_id, submitted, by_id)
        violations += _check_order(submitted, by_id)
    return violations, facts


def _check_client_view(show_id: int, submitted: list[Submitted], by_id: dict) -> list[str]:
    violations = []
    ids = {s.booking_id for s in submitted}
    if len(ids) != len(submitted):
        violations.append(f"show {show_id}: one booking id was returned for two different requests")
    if ids != set(by_id):
        violations.append(
            f"show {show_id}: {len(ids - set(by_id))} accepted bookings missing, "
            f"{len(set(by_id) - ids)} bookings nobody was told about"
        )
    for s in submitted:
        row = by_id.get(s.booking_id)
        if row is None:
            continue
        if "seats" in s.request and row[1] == "confirmed" and list(row[2]) != s.request["seats"]:
            violations.append(f"booking {s.booking_id}: asked {s.request['seats']}, holds {row[2]}")
        if "quantity" in s.request and row[3] != s.request["quantity"]:
            violations.append(f"booking {s.booking_id}: asked {s.request['quantity']} seats, booking has {row[3]}")
        if s.final is None:
            violations.append(f"booking {s.booking_id}: the client never saw a final state")
        elif s.final["status"] != row[1] or list(s.final["seats"]) != list(row[2]):
            violations.append(f"booking {s.booking_id}: polled {s.final['status']}, database says {row[1]}")
    return violations


def _check_order(submitted: list[Submitted], by_id: dict) -> list[str]:
    """If A's 202 was read before B was sent, A was decided before B: in an earlier batch
    (earlier decided_at) or earlier in the same batch (lower sequence)."""
    items = [(s.sent, s.received, (by_id[s.booking_id][6], by_id[s.booking_id][5]), s) for s in submitted]
    items = [item for item in items if item[2][0] is not None]
    by_received = sorted(items, key=lambda item: item[1])
    latest, latest_item, j = None, None, 0
    violations = []
    for sent, _, key, s in sorted(items, key=lambda item: item[0]):
        while j < len(by_received) and by_received[j][1] < sent:
            if latest is None or by_received[j][2] > latest:
                latest, latest_item = by_received[j][2], by_received[j][3]
            j += 1
        if latest is not None and not latest < key:
            violations.append(
                f"order: {latest_item.booking_id} was accepted before {s.booking_id} was sent, but decided after it"
            )
    return violations[:20]


def check_drain_order(show_id: int) -> list[str]:
    """Every booking was pending before the drain began, so acceptance order is sequence
    order: decided_at never goes back as the sequence goes up."""
    (back,) = _rows(
        "SELECT COUNT(*) FROM (SELECT decided_at, LAG(decided_at) OVER (ORDER BY sequence) AS prev "
        "FROM core_booking WHERE show_id = %s) t WHERE decided_at < prev",
        [show_id],
    )[0]
    return [f"show {show_id}: {back} bookings decided before an earlier-accepted one"] if back else []
