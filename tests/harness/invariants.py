"""The contract's guarantees, checked in SQL once bookings were decided: the one checker of
the race test, the fault tests and the benchmark.

Per show:
- every booking is final (none pending);
- no seat is held twice (neither in BookedSeat nor among the held or confirmed bookings' seats);
- the show never holds more seats than it has;
- a held or confirmed booking holds exactly its seats (as many as it asked for), any other
  (pending, failed, cancelled, expired) none;
- a failure has a reason that fits what the database holds (no `sold_out` while enough
  seats are free, no `seats_unavailable` while all of them are free);
and, given what the clients asked and were told (booking id -> request body, timings, the
final states they polled):
- every accepted booking exists, asked for what was requested, and no other booking exists;
- decisions are serial and right: replaying the show's bookings one at a time, in the order
  they were decided, through the seat allocator gives exactly what PostgreSQL holds;
- first accepted, first decided: a booking whose 202 was received before another booking was
  submitted is decided first;
- what a client polled last is what the database holds;
- selling: no user holds more than BOOKING_MAX_SEATS_PER_USER_PER_SHOW seats of the show
  (the replay applies the limit too, and the screen's seat categories); a confirmed booking
  has a unique reference and one line per held seat at the show's price for its ticket type
  and seat category, and its total is their sum;
- tickets: an admitted ticket belongs to a confirmed booking (a cancel never takes back a
  used ticket, a void ticket never admits).

`conn` is any DB-API connection whose cursors are context managers and take %s parameters:
Django's `connection` or a psycopg2 connection to a private cluster.
"""

import time
from collections import Counter, defaultdict
from decimal import Decimal

from django.conf import settings

from core.allocation import SeatAllocator
from core.pricing import PriceList, money
from core.seating import STANDARD, Layout, SeatCategories

DECIDED_REASONS = ("sold_out", "seats_unavailable", "limit_exceeded")
# The statuses that hold seats: a paying show's won booking is held until paid.
SEAT_HOLDING = ("held", "confirmed")


def rows(conn, query: str, *params) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def execute(conn, query: str, *params) -> None:
    with conn.cursor() as cursor:
        cursor.execute(query, params)


def wait_until_final(conn, booking_ids=None, *, timeout: float, logs=lambda: "") -> float:
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


def show_violations(
    conn,
    show_id: int,
    *,
    requests: dict[str, dict] | None = None,
    timings: dict[str, tuple[float, float]] | None = None,
    finals: dict[str, dict | None] | None = None,
    reasons: tuple[str, ...] = DECIDED_REASONS,
) -> tuple[list[str], dict]:
    """(violations, facts) of one show. `requests`: the show's accepted bookings (id ->
    request body); `timings`: id -> (submitted, 202 received) on one client clock; `finals`:
    id -> the last state a client polled; `reasons`: the failure reasons that may occur."""
    bookings = rows(
        conn,
        "SELECT id::text, status, seats, quantity, failure_reason, seat_category, accessible, user_id"
        " FROM core_booking WHERE show_id = %s ORDER BY decided_at, sequence",
        show_id,
    )
    held_rows = rows(conn, "SELECT booking_id::text, seat_label FROM core_bookedseat WHERE show_id = %s", show_id)
    ((layout_rows, per_row, premium, accessible, companion),) = rows(
        conn,
        "SELECT sc.rows, sc.seats_per_row, sc.premium_rows, sc.accessible_seats, sc.companion_seats"
        " FROM core_show sh JOIN core_screen sc ON sc.id = sh.screen_id WHERE sh.id = %s",
        show_id,
    )
    layout, categories = Layout(layout_rows, per_row), SeatCategories.of(premium, accessible, companion)
    capacity = layout_rows * per_row
    violations: list[str] = []

    pending = [b[0] for b in bookings if b[1] == "pending"]
    if pending:
        violations.append(f"show {show_id}: {len(pending)} bookings never decided (e.g. {pending[0]})")
    holders = Counter(label for _, label in held_rows)
    twice = [label for label, n in holders.items() if n > 1]
    if twice:
        violations.append(f"show {show_id}: seats held twice in BookedSeat: {twice[:5]}")
    confirmed = Counter(seat for b in bookings if b[1] in SEAT_HOLDING for seat in b[2])
    twice = [label for label, n in confirmed.items() if n > 1]
    if twice:
        violations.append(f"show {show_id}: seats confirmed to two bookings: {twice[:5]}")
    held = len(held_rows)
    if held > capacity:
        violations.append(f"show {show_id}: {held} seats held, capacity {capacity}")

    held_by: dict[str, list[str]] = {}
    for booking_id, label in held_rows:
        held_by.setdefault(booking_id, []).append(label)
    free_of = Counter(categories.category_of(label) for label, _, _ in layout.seats() if label not in holders)
    for booking_id, status, seats, quantity, reason, category, wheelchair, _ in bookings:
        if status in SEAT_HOLDING:
            if sorted(held_by.get(booking_id, [])) != sorted(seats) or len(seats) != quantity:
                violations.append(f"booking {booking_id}: {status} seats {seats} differ from held seats")
        elif held_by.get(booking_id):
            violations.append(f"booking {booking_id}: {status} but holds seats")
        if status != "failed":
            continue
        if reason not in reasons:
            violations.append(f"booking {booking_id}: failed with unexpected reason {reason}")
        # sold_out is judged within the asked category (a wheelchair request also needs a space).
        free = free_of[category]
        if reason == "sold_out" and not wheelchair and quantity <= free:
            message = f"sold_out for {quantity} {category} seats while {free} are still free"
            violations.append(f"booking {booking_id}: {message}")
        if reason == "seats_unavailable" and not set(seats) & set(holders):
            violations.append(f"booking {booking_id}: seats_unavailable but none of {seats} is held")

    if requests is not None:
        violations += _client_view(show_id, bookings, requests, finals)
        if not violations:
            violations += _serial_replay(show_id, bookings, requests, layout=layout, categories=categories)
    violations += _selling_violations(conn, show_id)
    violations += ticket_violations(conn, show_id)
    if timings:
        violations += _first_accepted_first_decided([b[0] for b in bookings], timings)
    statuses = Counter(b[1] for b in bookings)
    facts = {
        "bookings": len(bookings),
        "confirmed": statuses["confirmed"],
        "failed": statuses["failed"],
        "statuses": dict(statuses),
        "held": held,
        "capacity": capacity,
        "sold_out": held == capacity,
    }
    return violations, facts


def ticket_violations(conn, show_id: int) -> list[str]:
    """Admitted tickets of the show whose booking is not confirmed."""
    void = rows(
        conn,
        "SELECT line.booking_id::text, booking.status, line.seat_label FROM core_bookingline line"
        " JOIN core_booking booking ON booking.id = line.booking_id"
        " WHERE booking.show_id = %s AND line.admitted_at IS NOT NULL AND booking.status <> 'confirmed'",
        show_id,
    )
    return [f"booking {pk}: {status}, yet its ticket {seat} was admitted" for pk, status, seat in void]


def check_guarantees(conn, requests: dict[str, dict], *, timings: dict | None = None) -> dict:
    """Every guarantee on every show the accepted bookings (id -> request body) asked for;
    raises AssertionError listing what broke. Returns the bookings' per-status counts."""
    violations: list[str] = []
    statuses: Counter = Counter()
    for show_id in sorted({body["show"] for body in requests.values()}):
        mine = {pk: body for pk, body in requests.items() if body["show"] == show_id}
        # A poison booking is failed, never decided, with its own reason.
        found, facts = show_violations(
            conn, show_id, requests=mine, timings=timings, reasons=(*DECIDED_REASONS, "processing_error")
        )
        violations += found
        statuses.update(facts["statuses"])
    assert not violations, "\n".join(violations[:20])
    return dict(statuses)


def _client_view(show_id: int, bookings: list[tuple], requests: dict[str, dict], finals: dict | None) -> list[str]:
    by_id = {b[0]: b for b in bookings}
    violations = []
    missing, unknown = set(requests) - set(by_id), set(by_id) - set(requests)
    if missing:
        violations.append(f"show {show_id}: accepted bookings lost: {sorted(missing)[:5]} ({len(missing)} in all)")
    if unknown:
        violations.append(f"show {show_id}: {len(unknown)} bookings no client was told about, e.g. {min(unknown)}")
    for booking_id, body in requests.items():
        row = by_id.get(booking_id)
        if row is None:
            continue
        if "quantity" in body and row[3] != body["quantity"]:
            violations.append(f"booking {booking_id}: asked {body['quantity']} seats, the booking has {row[3]}")
        if finals is None:
            continue
        final = finals.get(booking_id)
        if final is None:
            violations.append(f"booking {booking_id}: the client never saw a final state")
        elif (final["status"], list(final["seats"])) != (row[1], list(row[2])):
            violations.append(f"booking {booking_id}: polled {final['status']}, the database says {row[1]}")
    return violations


def _serial_replay(
    show_id: int, bookings: list[tuple], requests: dict[str, dict], *, layout: Layout, categories: SeatCategories
) -> list[str]:
    """PostgreSQL must hold exactly the outcome of deciding the show's bookings one at a time
    in their decision order (decided_at, then acceptance order within a batch), which holds
    only if the decisions were serial. The replay keeps the selling rules: the screen's seat
    categories and the per-user seat limit (checked before the seats)."""
    allocator = SeatAllocator(layout, [], categories)
    limit = settings.BOOKING_MAX_SEATS_PER_USER_PER_SHOW
    held_by_user: dict[int, int] = defaultdict(int)
    for booking_id, status, seats, _, reason, _, _, user_id in bookings:
        if (status, reason) == ("failed", "processing_error"):
            continue  # never decided; it holds nothing
        body = requests[booking_id]
        count = len(body["seats"]) if "seats" in body else body["quantity"]
        if held_by_user[user_id] + count > limit:
            expected = ("failed", body.get("seats", []), "limit_exceeded")
        elif "seats" in body:
            expected = ("confirmed", body["seats"], None) if allocator.take_exact(body["seats"]) else None
            expected = expected or ("failed", body["seats"], "seats_unavailable")
        else:
            category, wheelchair = body.get("seat_category", STANDARD), body.get("accessible", False)
            labels = allocator.take_best(body["quantity"], category, accessible=wheelchair)
            expected = ("confirmed", labels, None) if labels else ("failed", [], "sold_out")
        if expected[0] == "confirmed":
            held_by_user[user_id] += count
        # A paying show's winner is held (until paid): the same decision.
        if (("confirmed" if status == "held" else status), list(seats), reason) != expected:
            return [
                f"show {show_id}, booking {booking_id}: PostgreSQL holds {(status, seats, reason)}, deciding the"
                f" bookings one at a time in their decision order gives {expected}"
            ]
    return []


def _selling_violations(conn, show_id: int) -> list[str]:
    """The show's users within the seat limit; each confirmed booking with a unique reference,
    one line per held seat at the show's price for its ticket type and category (prices do
    not change while a test or scenario runs), and a total that is their sum."""
    violations = [
        f"show {show_id}: user {user} holds {n} seats, over the limit"
        for user, n in rows(
            conn,
            "SELECT user_id, sum(cardinality(seats)) FROM core_booking"
            " WHERE show_id = %s AND status IN ('held', 'confirmed') GROUP BY user_id"
            " HAVING sum(cardinality(seats)) > %s LIMIT 5",
            show_id,
            settings.BOOKING_MAX_SEATS_PER_USER_PER_SHOW,
        )
    ]
    wrong = rows(
        conn,
        "SELECT b.id::text FROM core_booking b WHERE b.show_id = %s AND b.status IN ('held', 'confirmed') AND ("
        " b.reference IS NULL OR b.total IS DISTINCT FROM (SELECT sum(amount) FROM core_bookingline l"
        " WHERE l.booking_id = b.id) OR ARRAY(SELECT seat_label FROM core_bookingline l WHERE l.booking_id = b.id"
        " ORDER BY 1) <> ARRAY(SELECT seat_label FROM core_bookedseat s WHERE s.booking_id = b.id ORDER BY 1)"
        " OR EXISTS (SELECT 1 FROM core_booking o WHERE o.reference = b.reference AND o.id <> b.id)) LIMIT 5",
        show_id,
    )
    violations += [f"booking {pk}: its reference, lines or total disagree with its seats" for (pk,) in wrong]
    ((base,),) = rows(conn, "SELECT price FROM core_show WHERE id = %s", show_id)
    explicit = rows(conn, "SELECT ticket_type, seat_category, amount FROM core_showprice WHERE show_id = %s", show_id)
    prices = PriceList(
        base=base,
        explicit={(t, c): amount for t, c, amount in explicit},
        premium_surcharge=money(settings.BOOKING_PREMIUM_SURCHARGE),
    )
    for booking_id, ticket_type, category, amount in rows(
        conn,
        "SELECT b.id::text, l.ticket_type, l.seat_category, l.amount FROM core_bookingline l"
        " JOIN core_booking b ON b.id = l.booking_id WHERE b.show_id = %s",
        show_id,
    ):
        if Decimal(amount) != prices.amount(ticket_type, category):
            violations.append(f"booking {booking_id}: a {ticket_type}/{category} line at {amount}")
            break
    return violations


def _first_accepted_first_decided(decided: list[str], timings: dict[str, tuple[float, float]]) -> list[str]:
    """`decided`: booking ids in decision order; timings: id -> (submitted, 202 received).
    No booking may be decided after one that was submitted only once its 202 was received."""
    violations = []
    earliest_answer_after, answered_first = float("inf"), ""  # over the bookings decided later
    for booking_id in reversed(decided):
        submitted, answered = timings.get(booking_id, (float("-inf"), float("inf")))
        if earliest_answer_after < submitted:
            violations.append(
                f"order: {answered_first} was accepted before {booking_id} was submitted, but decided after it"
            )
        if answered < earliest_answer_after:
            earliest_answer_after, answered_first = answered, booking_id
    return violations[:20]


def check_drain_order(conn, show_id: int) -> list[str]:
    """Every booking was pending before the drain began, so acceptance order is sequence
    order: decided_at never goes back as the sequence goes up."""
    ((back,),) = rows(
        conn,
        "SELECT COUNT(*) FROM (SELECT decided_at, LAG(decided_at) OVER (ORDER BY sequence) AS prev "
        "FROM core_booking WHERE show_id = %s) t WHERE decided_at < prev",
        show_id,
    )
    return [f"show {show_id}: {back} bookings decided before an earlier-accepted one"] if back else []


def unique_violations(pg_log: str) -> list[str]:
    """Lines of the PostgreSQL log where the unique seat constraint refused a second holder."""
    return [line for line in pg_log.splitlines() if "booked_seat_unique_per_show" in line]


def payments_settled(conn) -> bool:
    """No payment is still being decided and no refund is still on its way."""
    ((open_,),) = rows(
        conn,
        "SELECT count(*) FROM core_payment WHERE status IN ('created', 'processing') OR refund_status = 'pending'",
    )
    return open_ == 0


def payment_violations(conn, *, now_settled: bool = True) -> list[str]:
    """The payment guarantees, in SQL, over every booking of the database:
    - one effect per charge: every provider charge (the fake's ledger) belongs to exactly one
      payment, and a payment to at most one charge;
    - no charge without a confirmed booking or a refund: every succeeded payment is either the
      one kept charge of a confirmed booking or refunded (pending while `now_settled` is off),
      and the fake's ledger gave back exactly what was refunded;
    - a confirmed booking of a paying show has exactly one kept charge, of its total;
    - a held booking has a deadline in the future (once everything settled: none is held past
      its deadline for longer than the expiry job's interval), and holds its seats."""
    violations = []
    for intent, n in rows(
        conn,
        "SELECT f.intent_id, count(p.id) FROM core_fakecharge f LEFT JOIN core_payment p"
        " ON p.intent_id = f.intent_id GROUP BY f.intent_id HAVING count(p.id) <> 1 LIMIT 5",
    ):
        violations.append(f"provider charge {intent}: {n} payments")
    for (key,) in rows(
        conn,
        "SELECT idempotency_key FROM core_fakecharge GROUP BY idempotency_key HAVING count(*) > 1 LIMIT 5",
    ):
        violations.append(f"provider idempotency key {key}: charged twice")
    for pk, booking_status, refund in rows(
        conn,
        "SELECT p.id::text, b.status, p.refund_status FROM core_payment p JOIN core_booking b ON b.id = p.booking_id"
        # IS NOT DISTINCT FROM: a NULL refund_status must make the condition false, never NULL.
        " WHERE p.status = 'succeeded' AND NOT ((b.status = 'confirmed' AND p.refund_status IS NULL)"
        " OR p.refund_status IS NOT DISTINCT FROM 'refunded'"
        " OR (p.refund_status IS NOT DISTINCT FROM 'pending' AND NOT %s)) LIMIT 5",
        now_settled,
    ):
        violations.append(f"payment {pk}: succeeded, booking {booking_status}, refund {refund}")
    for pk, charged, refunded in rows(
        conn,
        "SELECT p.id::text, f.status, f.refunded_amount FROM core_payment p JOIN core_fakecharge f"
        " ON f.intent_id = p.intent_id WHERE (p.refund_status IS NOT DISTINCT FROM 'refunded')"
        " <> (f.refunded_amount > 0) OR (p.status NOT IN ('created', 'processing')"
        " AND (p.status = 'succeeded') <> (f.status = 'succeeded')) LIMIT 5",
    ):
        violations.append(f"payment {pk}: the provider says {charged}, refunded {refunded}")
    for pk, kept in rows(
        conn,
        "SELECT b.id::text, count(p.id) FILTER (WHERE p.status = 'succeeded' AND p.refund_status IS NULL"
        " AND p.amount = b.total) FROM core_booking b JOIN core_show s ON s.id = b.show_id"
        " LEFT JOIN core_payment p ON p.booking_id = b.id WHERE s.payment_required AND b.status = 'confirmed'"
        " GROUP BY b.id HAVING count(p.id) FILTER (WHERE p.status = 'succeeded' AND p.refund_status IS NULL"
        " AND p.amount = b.total) <> 1 LIMIT 5",
    ):
        violations.append(f"booking {pk}: confirmed on a paying show with {kept} kept charges of its total")
    grace = "5 seconds" if now_settled else "1 year"
    for (pk,) in rows(
        conn,
        "SELECT id::text FROM core_booking WHERE status = 'held' AND hold_expires_at < now() - %s::interval LIMIT 5",
        grace,
    ):
        violations.append(f"booking {pk}: still held long past its deadline")
    for (pk,) in rows(
        conn,
        "SELECT b.id::text FROM core_booking b WHERE NOT (b.status IN ('held', 'confirmed')) AND EXISTS"
        " (SELECT 1 FROM core_bookedseat s WHERE s.booking_id = b.id) LIMIT 5",
    ):
        violations.append(f"booking {pk}: not live but holds seats")
    return violations
