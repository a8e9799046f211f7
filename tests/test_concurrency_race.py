"""Race: 300 users book one 100-seat show at once through gunicorn, decided by several Celery
worker processes; then the contract's invariants are checked in SQL.

The show sells like a cinema: a premium row, wheelchair spaces with companion seats, ticket
types with their prices; the requests mix exact seats, best available in a category,
wheelchair requests, and a few greedy users who ask for more than the per-user seat limit
at once."""

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from core.models import Booking, ShowPrice
from core.pricing import TICKET_TYPES
from tests.factories import ShowFactory, UserFactory
from tests.live import poll_until_final, start_worker

pytestmark = [pytest.mark.e2e, pytest.mark.race, pytest.mark.django_db(transaction=True)]

USERS = 300
LATE_SINGLES = 20  # submitted after every other 202: by the order guarantee they come last
GREEDY = 5  # users who each ask for 3 x 4 seats at once, over the limit of 10
SEAT_LIMIT = 10  # BOOKING_MAX_SEATS_PER_USER_PER_SHOW, the contract's default


@pytest.fixture
def second_worker(live_stack):
    """A second worker instance, so that deciders in different processes compete for shows."""
    worker = start_worker(live_stack.log_dir, concurrency=2, name="race")
    yield worker
    worker.stop()


def _tickets(rng: random.Random, count: int) -> dict:
    counts = dict.fromkeys(TICKET_TYPES, 0)
    for _ in range(count):
        counts[rng.choice(TICKET_TYPES)] += 1
    return {t: n for t, n in counts.items() if n}


def _requests(rng: random.Random) -> list[dict]:
    """Mixed explicit seats (overlapping on purpose: rows B-E only), best available in a
    category with ticket types, and wheelchair requests."""
    requests = []
    for i in range(USERS - LATE_SINGLES - GREEDY):
        if i % 3 == 0:
            row = rng.choice("BCDE")
            start = rng.randint(1, 8)
            requests.append({"seats": [f"{row}{n}" for n in range(start, start + rng.randint(1, 3))]})
            continue
        quantity = rng.randint(1, 4)
        request = {"quantity": quantity}
        roll = rng.random()
        if roll < 0.05:
            request["accessible"] = True
        elif roll < 0.25:
            request["seat_category"] = "premium"
        if rng.random() < 0.5:
            request["tickets"] = _tickets(rng, quantity)
        requests.append(request)
    return requests


def _sql(query: str, *params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def test_concurrent_bookings_never_oversell(live_stack, second_worker):
    show = ShowFactory(
        screen__rows=10,
        screen__seats_per_row=10,
        screen__premium_rows=["J"],
        screen__accessible_seats=["A1", "A10"],
        screen__companion_seats=["A2", "A9"],
        price=Decimal("10.00"),
    )
    ShowPrice.objects.create(show=show, ticket_type="child", seat_category="standard", amount=Decimal("6.00"))
    prices = {(p["ticket_type"], p["seat_category"]): Decimal(p["amount"]) for p in show.price_grid}
    users = UserFactory.create_batch(USERS)
    requests = _requests(random.Random(20261128))
    clients = [live_stack.client(user) for user in users]
    greedy = clients[USERS - LATE_SINGLES - GREEDY : USERS - LATE_SINGLES]

    def submit(args):
        client, body = args
        response = client.post("/api/v1/bookings", json={"show": show.pk, **body})
        assert response.status_code == 202, response.text
        return response.json()["id"], body

    try:
        with ThreadPoolExecutor(max_workers=48) as pool:
            # The greedy first, so that they are decided before the show sells out.
            first_wave = [(client, {"quantity": 4}) for client in greedy for _ in range(3)]
            first_wave += list(zip(clients, requests, strict=False))
            accepted = list(pool.map(submit, first_wave))
            late = list(pool.map(submit, [(c, {"quantity": 1}) for c in clients[-LATE_SINGLES:]]))
            accepted += late
            owners = [client for client, _ in first_wave] + clients[-LATE_SINGLES:]
            finals = list(
                pool.map(
                    lambda pair: poll_until_final(pair[0], pair[1][0], timeout=60), zip(owners, accepted, strict=True)
                )
            )
    finally:
        for client in clients:
            client.close()

    asked = dict(accepted)
    total = USERS - GREEDY + 3 * GREEDY
    assert len(finals) == total == len(asked)
    assert {f["id"] for f in finals} == set(asked)
    assert Booking.objects.filter(show=show).count() == total, "no booking appeared or vanished"
    assert not Booking.objects.filter(show=show, status="pending").exists()

    # No seat of the show is held twice: neither in BookedSeat nor in the bookings' own records.
    assert not _sql(
        "SELECT seat_label FROM core_bookedseat WHERE show_id = %s GROUP BY seat_label HAVING COUNT(*) > 1", show.pk
    )
    assert not _sql(
        "SELECT seat FROM core_booking, unnest(seats) AS seat WHERE show_id = %s AND status = 'confirmed' "
        "GROUP BY seat HAVING COUNT(*) > 1",
        show.pk,
    )
    # Held seats never exceed the capacity; the demand for standard seats (far more than the
    # 86 there are) sells every one of them.
    (held,) = _sql("SELECT COUNT(*) FROM core_bookedseat WHERE show_id = %s", show.pk)[0]
    assert held <= 100
    (standard_held,) = _sql(
        "SELECT COUNT(*) FROM core_bookingline l JOIN core_booking b ON b.id = l.booking_id "
        "WHERE b.show_id = %s AND b.status = 'confirmed' AND l.seat_category = 'standard'",
        show.pk,
    )[0]
    assert standard_held == 86

    # No user holds more than the limit, however many of their bookings raced.
    assert not _sql(
        "SELECT user_id FROM core_booking WHERE show_id = %s AND status = 'confirmed' "
        "GROUP BY user_id HAVING sum(cardinality(seats)) > %s",
        show.pk,
        SEAT_LIMIT,
    )
    # A confirmed booking's lines are its held seats, each at the show's price for its ticket
    # type and category; its total is their sum; its reference is unique.
    assert not _sql(
        "SELECT b.id FROM core_booking b WHERE b.show_id = %s AND b.status = 'confirmed' AND ("
        "b.reference IS NULL OR b.total IS DISTINCT FROM (SELECT sum(amount) FROM core_bookingline l "
        "WHERE l.booking_id = b.id) OR ARRAY(SELECT seat_label FROM core_bookingline l WHERE l.booking_id = b.id "
        "ORDER BY 1) <> ARRAY(SELECT seat_label FROM core_bookedseat s WHERE s.booking_id = b.id ORDER BY 1))",
        show.pk,
    )
    assert not _sql(
        "SELECT reference FROM core_booking WHERE reference IS NOT NULL GROUP BY reference HAVING count(*) > 1"
    )

    # Every confirmed booking holds what it asked for, in the categories it asked for.
    for booking in Booking.objects.filter(show=show, status="confirmed").prefetch_related("lines"):
        request = asked[str(booking.pk)]
        lines = list(booking.lines.all())
        categories = [line.seat_category for line in lines]
        if "seats" in request:
            assert booking.seats == request["seats"]
        else:
            assert len(booking.seats) == request["quantity"] == booking.quantity
            if request.get("accessible"):
                assert categories.count("accessible") == 1
                assert set(categories) <= {"accessible", "companion", "standard"}
            else:
                assert set(categories) == {request.get("seat_category", "standard")}
        tickets = sorted(line.ticket_type for line in lines)
        expected = request.get("tickets") or {"adult": len(lines)}
        assert tickets == sorted(t for t, n in expected.items() for _ in range(n))
        assert all(line.amount == prices[(line.ticket_type, line.seat_category)] for line in lines)
        assert sorted(booking.booked_seats.values_list("seat_label", flat=True)) == sorted(booking.seats)
    failed = Booking.objects.filter(show=show, status="failed")
    assert set(failed.values_list("failure_reason", flat=True)) <= {"seats_unavailable", "sold_out", "limit_exceeded"}
    assert failed.filter(failure_reason="sold_out").exists()
    # Each greedy user asked for 3 x 4 seats at once: never more than two of them are
    # confirmed, and the third is refused as over the limit (unless an earlier one sold out).
    greedy_ids = [user.pk for user in users[USERS - LATE_SINGLES - GREEDY : USERS - LATE_SINGLES]]
    confirmed = Booking.objects.filter(show=show, status="confirmed", user_id__in=greedy_ids)
    assert all(confirmed.filter(user_id=pk).count() <= 2 for pk in greedy_ids)
    assert failed.filter(user_id__in=greedy_ids, failure_reason="limit_exceeded").exists()
