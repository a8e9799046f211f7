"""Selling through real processes (gunicorn, Celery workers, Redis, PostgreSQL): a screen with
seat categories and a priced show made over HTTP, bookings of each kind, references, the
per-user seat limit, and prices fixed at decision."""

from datetime import UTC, datetime, timedelta

import pytest

from core.models import BookedSeat, Booking, BookingLine
from tests.factories import MovieFactory, UserFactory
from tests.harness.polling import poll_until_final

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _created(response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def priced_show(live_stack):
    """6 rows of 8: row F premium, A1/A8 wheelchair spaces with companions A2/A7; adult 10.00,
    child 6.00 on standard seats, premium by the fallback (+ the default 2.00 surcharge)."""
    staff = UserFactory(is_staff=True)
    movie = MovieFactory()
    with live_stack.client(staff) as admin:
        screen = _created(
            admin.post(
                "/api/v1/screens",
                json={
                    "name": f"Selling {movie.pk}",
                    "rows": 6,
                    "seats_per_row": 8,
                    "premium_rows": ["F"],
                    "accessible_seats": ["A1", "A8"],
                    "companion_seats": ["A2", "A7"],
                },
            )
        )
        show = _created(
            admin.post(
                "/api/v1/shows",
                json={
                    "movie": movie.pk,
                    "screen": screen["id"],
                    "starts_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                    "price": "10.00",
                    "prices": [{"ticket_type": "child", "seat_category": "standard", "amount": "6.00"}],
                },
            )
        )
    return show, staff


def _book(client, body) -> dict:
    accepted = client.post("/api/v1/bookings", json=body)
    assert accepted.status_code == 202, accepted.text
    return poll_until_final(client, accepted.json()["id"])


def test_a_priced_categorised_show_sells_end_to_end(live_stack, priced_show):
    show, staff = priced_show
    alice, bob = UserFactory(), UserFactory()
    with live_stack.client(alice) as a, live_stack.client(bob) as b, live_stack.client(staff) as admin:
        premium = _book(
            a, {"show": show["id"], "quantity": 2, "seat_category": "premium", "tickets": {"adult": 1, "child": 1}}
        )
        assert premium["status"] == "confirmed", premium
        assert {seat[0] for seat in premium["seats"]} == {"F"}
        assert (premium["total"], premium["currency"]) == ("20.00", "EUR")  # 12.00 + (6.00 + 2.00)
        assert sorted((line["ticket_type"], line["amount"]) for line in premium["lines"]) == [
            ("adult", "12.00"),
            ("child", "8.00"),
        ]
        assert len(premium["reference"]) == 8

        wheelchair = _book(b, {"show": show["id"], "quantity": 2, "accessible": True})
        assert wheelchair["status"] == "confirmed", wheelchair
        assert {line["seat_category"] for line in wheelchair["lines"]} == {"accessible", "companion"}
        assert wheelchair["total"] == "20.00"

        plain = _book(b, {"show": show["id"], "quantity": 3})
        assert plain["status"] == "confirmed"
        assert {line["seat_category"] for line in plain["lines"]} == {"standard"}

        refused = b.post("/api/v1/bookings", json={"show": show["id"], "seats": ["A2"]})
        assert refused.status_code == 400
        assert "seats" in refused.json()["details"]

        # A later price change does not alter a decided booking.
        assert admin.patch(f"/api/v1/shows/{show['id']}", json={"price": "30.00"}).status_code == 200
        again = a.get(f"/api/v1/bookings/{premium['id']}").json()
        assert again["total"] == "20.00"

        # Found by its reference, as a person types it; not by another user.
        typed = premium["reference"].lower()
        found = a.get(f"/api/v1/bookings?reference={typed}").json()
        assert [item["id"] for item in found["results"]] == [premium["id"]]
        assert b.get(f"/api/v1/bookings?reference={typed}").json()["count"] == 0

        seat_map = a.get(f"/api/v1/shows/{show['id']}/seats").json()
        by_label = {seat["label"]: seat for seat in seat_map["seats"]}
        assert by_label["A1"]["category"] == "accessible"
        assert by_label["F4"]["category"] == "premium"
        taken = {label for label, seat in by_label.items() if not seat["available"]}
        assert taken == set(premium["seats"]) | set(wheelchair["seats"]) | set(plain["seats"])

    # In SQL: the lines are the held seats, the totals their sums.
    for booking in Booking.objects.filter(show_id=show["id"], status="confirmed"):
        lines = BookingLine.objects.filter(booking=booking)
        assert sorted(lines.values_list("seat_label", flat=True)) == sorted(
            BookedSeat.objects.filter(booking=booking).values_list("seat_label", flat=True)
        )
        assert booking.total == sum(line.amount for line in lines)


def test_the_seat_limit_per_user_is_decided_by_the_worker(live_stack, priced_show):
    show, _ = priced_show
    greedy = UserFactory()
    with live_stack.client(greedy) as client:
        ids = []
        for _ in range(3):
            accepted = client.post("/api/v1/bookings", json={"show": show["id"], "quantity": 4})
            assert accepted.status_code == 202, accepted.text
            ids.append(accepted.json()["id"])
        finals = [poll_until_final(client, booking_id) for booking_id in ids]
    assert [(f["status"], f["failure_reason"]) for f in finals] == [
        ("confirmed", None),
        ("confirmed", None),
        ("failed", "limit_exceeded"),
    ]
    assert finals[2]["reference"] is None
    assert finals[2]["lines"] == []
