"""The contract's guarantees, checked in SQL on the private database after a fault.

- every accepted (202) booking exists and is final;
- no seat of a show is held twice (neither in BookedSeat nor in the bookings' own seats);
- a show never holds more seats than it has;
- when demand exceeded supply, the show sold out;
- decisions are serial and right: replaying a show's bookings one at a time, in the order
  they were decided, through the seat allocator gives exactly what PostgreSQL holds;
- first accepted, first decided: a booking whose 202 was received before another booking
  was submitted is decided first;
- selling: no user holds more than BOOKING_MAX_SEATS_PER_USER_PER_SHOW seats of a show; a
  confirmed booking has a unique reference and one line per held seat, at the show's price
  for its ticket type and seat category, and its total is their sum.
"""

import time
from collections import Counter, defaultdict
from decimal import Decimal

from django.conf import settings

from core.pricing import PriceList, money
from core.seating import STANDARD, Layout, SeatAllocator, SeatCategories


def rows(conn, query: str, *params) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def execute(conn, query: str, *params) -> None:
    with conn.cursor() as cursor:
        cursor.execute(query, params)


def wait_until_final(conn, booking_ids, *, timeout: float, logs=lambda: "") -> float:
    """Wait (bounded) until no booking of the database is pending; returns the seconds waited."""
    started = time.monotonic()
    while True:
        (pending,) = rows(conn, "SELECT count(*) FROM core_booking WHERE status = 'pending'")[0]
        if not pending:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            stuck = rows(conn, "SELECT id, show_id, created_at FROM core_booking WHERE status = 'pending' LIMIT 5")
            raise AssertionError(f"{pending} bookings still pending after {timeout}s, e.g. {stuck}\n{logs()}")
        time.sleep(0.25)


def check_guarantees(conn, requests: dict[str, dict], *, timings: dict | None = None) -> dict:
    """Check every guarantee; `requests` maps each accepted booking id to its request body,
    `timings` each to (first submission, 202 received) on the test's monotonic clock.

    Returns per-status counts. Raises AssertionError naming the first broken guarantee.
    """
    accepted = list(requests)
    found = dict(rows(conn, "SELECT id::text, status FROM core_booking WHERE id = ANY(%s::uuid[])", accepted))
    missing = set(accepted) - set(found)
    assert not missing, f"accepted bookings lost: {sorted(missing)[:5]} ({len(missing)} in all)"
    pending = [pk for pk, status in found.items() if status == "pending"]
    assert not pending, f"accepted bookings never decided: {pending[:5]} ({len(pending)})"

    double = rows(
        conn, "SELECT show_id, seat_label, count(*) FROM core_bookedseat GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5"
    )
    assert not double, f"seats held twice (show, seat, holders): {double}"
    double = rows(
        conn,
        "SELECT show_id, seat, count(*) FROM core_booking, unnest(seats) AS seat WHERE status = 'confirmed'"
        " GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5",
    )
    assert not double, f"seats confirmed to two bookings (show, seat, bookings): {double}"
    mismatched = rows(
        conn,
        "SELECT b.id FROM core_booking b LEFT JOIN core_bookedseat s ON s.booking_id = b.id"
        " GROUP BY b.id, b.status, b.seats HAVING (b.status = 'confirmed') IS DISTINCT FROM (count(s.id) > 0)"
        " OR (b.status = 'confirmed' AND array_agg(s.seat_label ORDER BY s.seat_label)"
        " <> (SELECT array_agg(x ORDER BY x) FROM unnest(b.seats) AS x)) LIMIT 5",
    )
    assert not mismatched, f"held seats disagree with the bookings' status or seats: {mismatched}"

    over = rows(
        conn,
        "SELECT sh.id, count(bs.id), sc.rows * sc.seats_per_row FROM core_show sh JOIN core_screen sc"
        " ON sc.id = sh.screen_id LEFT JOIN core_bookedseat bs ON bs.show_id = sh.id"
        " GROUP BY sh.id, sc.rows, sc.seats_per_row HAVING count(bs.id) > sc.rows * sc.seats_per_row",
    )
    assert not over, f"shows holding more seats than they have (show, held, capacity): {over}"

    _check_selling(conn)
    _check_sold_out(conn, requests)
    for show_id in {body["show"] for body in requests.values()}:
        _check_decisions(conn, show_id, requests, timings)
    return dict(Counter(found.values()))


def _screen(conn, show_id: int) -> tuple[Layout, SeatCategories]:
    ((rows_, per_row, premium, accessible, companion),) = rows(
        conn,
        "SELECT sc.rows, sc.seats_per_row, sc.premium_rows, sc.accessible_seats, sc.companion_seats"
        " FROM core_show sh JOIN core_screen sc ON sc.id = sh.screen_id WHERE sh.id = %s",
        show_id,
    )
    return Layout(rows_, per_row), SeatCategories.of(premium, accessible, companion)


def _check_selling(conn) -> None:
    over = rows(
        conn,
        "SELECT show_id, user_id, sum(cardinality(seats)) FROM core_booking WHERE status = 'confirmed'"
        " GROUP BY show_id, user_id HAVING sum(cardinality(seats)) > %s LIMIT 5",
        settings.BOOKING_MAX_SEATS_PER_USER_PER_SHOW,
    )
    assert not over, f"users holding more seats of a show than the limit (show, user, seats): {over}"
    wrong = rows(
        conn,
        "SELECT b.id FROM core_booking b WHERE b.status = 'confirmed' AND (b.reference IS NULL OR"
        " b.total IS DISTINCT FROM (SELECT sum(amount) FROM core_bookingline l WHERE l.booking_id = b.id) OR"
        " ARRAY(SELECT seat_label FROM core_bookingline l WHERE l.booking_id = b.id ORDER BY 1) <>"
        " ARRAY(SELECT seat_label FROM core_bookedseat s WHERE s.booking_id = b.id ORDER BY 1)) LIMIT 5",
    )
    assert not wrong, f"confirmed bookings whose reference, lines or total disagree with their seats: {wrong}"
    twice = rows(conn, "SELECT reference FROM core_booking WHERE reference IS NOT NULL GROUP BY 1 HAVING count(*) > 1")
    assert not twice, f"references given twice: {twice}"
    # Every line at the price of its show for its ticket type and seat category (the shows'
    # prices do not change during a fault test).
    prices: dict[int, PriceList] = {}
    for show_id, base in rows(conn, "SELECT id, price FROM core_show"):
        explicit = rows(
            conn, "SELECT ticket_type, seat_category, amount FROM core_showprice WHERE show_id = %s", show_id
        )
        prices[show_id] = PriceList(
            base=base,
            explicit={(t, c): amount for t, c, amount in explicit},
            premium_surcharge=money(settings.BOOKING_PREMIUM_SURCHARGE),
        )
    lines = rows(
        conn,
        "SELECT b.show_id, b.id, l.ticket_type, l.seat_category, l.amount FROM core_bookingline l"
        " JOIN core_booking b ON b.id = l.booking_id",
    )
    for show_id, booking_id, ticket_type, category, amount in lines:
        expected = prices[show_id].amount(ticket_type, category)
        assert Decimal(amount) == expected, f"booking {booking_id}: a {ticket_type}/{category} line at {amount}"


def _check_sold_out(conn, requests: dict[str, dict]) -> None:
    """Where standard seats were asked for beyond the show's standard seats, a standard
    request was refused as sold out only once fewer standard seats were free than it asked."""
    demand: dict[int, int] = defaultdict(int)
    for body in requests.values():
        if "quantity" in body and body.get("seat_category", STANDARD) == STANDARD and not body.get("accessible"):
            demand[body["show"]] += body["quantity"]
    for show_id, asked in demand.items():
        layout, categories = _screen(conn, show_id)
        standard = [label for label, _, _ in layout.seats() if categories.category_of(label) == STANDARD]
        held = {label for (label,) in rows(conn, "SELECT seat_label FROM core_bookedseat WHERE show_id = %s", show_id)}
        if asked <= len(standard):
            continue
        refused = [q for (q,) in rows(conn, _SOLD_OUT_QUANTITIES, show_id)]
        assert refused, f"show {show_id}: {asked} standard seats asked for {len(standard)}, none refused as sold out"
        free = len(set(standard) - held)
        assert free < min(refused), f"show {show_id}: {free} seats left free while a {min(refused)} was sold out"


_SOLD_OUT_QUANTITIES = (
    "SELECT quantity FROM core_booking WHERE show_id = %s AND failure_reason = 'sold_out'"
    " AND seat_category = 'standard' AND NOT accessible AND cardinality(seats) = 0"
)


def _check_decisions(conn, show_id: int, requests: dict[str, dict], timings: dict | None) -> None:
    """Replay the show's bookings through the seat allocator in the order they were decided
    (decided_at, then acceptance order within a batch): PostgreSQL must hold exactly the
    outcome of deciding them one at a time, which holds only if the decisions were serial.
    And that order must keep the contract's promise: a booking whose 202 was received before
    another was submitted is decided first."""
    layout, categories = _screen(conn, show_id)
    allocator = SeatAllocator(layout, [], categories)
    limit = settings.BOOKING_MAX_SEATS_PER_USER_PER_SHOW
    held_by: dict[int, int] = defaultdict(int)  # seats each user holds so far
    bookings = rows(
        conn,
        "SELECT id::text, status, seats, failure_reason, user_id FROM core_booking WHERE show_id = %s"
        " ORDER BY decided_at, sequence",
        show_id,
    )
    for booking_id, status, seats, reason, user_id in bookings:
        assert booking_id in requests, f"booking {booking_id} of show {show_id} was never requested by a client"
        if (status, reason) == ("failed", "processing_error"):
            continue  # never decided; it holds nothing
        body = requests[booking_id]
        count = len(body["seats"]) if "seats" in body else body["quantity"]
        if held_by[user_id] + count > limit:
            expected = ("failed", body.get("seats", []), "limit_exceeded")
        elif "seats" in body:
            expected = ("confirmed", body["seats"], None) if allocator.take_exact(body["seats"]) else None
            expected = expected or ("failed", body["seats"], "seats_unavailable")
        else:
            category, accessible = body.get("seat_category", STANDARD), body.get("accessible", False)
            labels = allocator.take_best(body["quantity"], category, accessible=accessible)
            expected = ("confirmed", labels, None) if labels else ("failed", [], "sold_out")
        if expected[0] == "confirmed":
            held_by[user_id] += count
        assert (status, seats, reason) == expected, (
            f"show {show_id}, booking {booking_id}: PostgreSQL holds {(status, seats, reason)}, deciding the"
            f" bookings one at a time in their decision order gives {expected}"
        )
    if timings:
        _check_first_accepted_first_decided([b[0] for b in bookings], timings)


def _check_first_accepted_first_decided(decided: list[str], timings: dict[str, tuple[float, float]]) -> None:
    """timings: booking id -> (first submission, 202 received), on the test's monotonic clock.
    No booking may be decided after one that was submitted only once its 202 was received."""
    earliest_answer_after = float("inf")  # min 202-received time over bookings decided later
    for booking_id in reversed(decided):
        submitted, answered = timings.get(booking_id, (float("-inf"), float("inf")))
        assert earliest_answer_after >= submitted, (
            f"booking {booking_id} was decided before a booking whose 202 had been received before it was"
            " submitted (first accepted, first decided)"
        )
        earliest_answer_after = min(earliest_answer_after, answered)


def unique_violations(pg_log: str) -> list[str]:
    """Lines of the PostgreSQL log where the unique seat constraint refused a second holder."""
    return [line for line in pg_log.splitlines() if "booked_seat_unique_per_show" in line]
