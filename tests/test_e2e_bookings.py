"""A booking's whole life through real processes: gunicorn, Celery workers, Redis, PostgreSQL."""

import time

import pytest
from django.test import override_settings

from core.models import BookedSeat, Booking
from core.show_lock import show_lock
from tests.factories import ShowFactory, UserFactory
from tests.harness.polling import poll_until_final
from tests.harness.procs import wait_until
from workers.tasks import decide_show, recover_pending_bookings

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def show():
    return ShowFactory(screen__rows=5, screen__seats_per_row=8)


def test_submit_poll_confirmed_and_the_seat_map_shows_it(live_stack, show):
    user = UserFactory()
    with live_stack.client(user) as client:
        accepted = client.post("/api/v1/bookings", json={"show": show.pk, "seats": ["C4", "C5"]})
        assert accepted.status_code == 202, accepted.text
        location = accepted.headers["Location"]
        final = poll_until_final(client, accepted.json()["id"])
        assert client.get(location).json() == final
        seat_map = client.get(f"/api/v1/shows/{show.pk}/seats").json()
    assert final["status"] == "confirmed"
    assert final["seats"] == ["C4", "C5"]
    assert final["decided_at"] >= final["created_at"]
    taken = {s["label"] for s in seat_map["seats"] if not s["available"]}
    assert taken == {"C4", "C5"}
    assert seat_map["available"] == 38


def test_cancelled_seats_can_be_booked_again_at_once(live_stack, show):
    alice, bob = UserFactory(), UserFactory()
    with live_stack.client(alice) as a, live_stack.client(bob) as b:
        first = poll_until_final(a, a.post("/api/v1/bookings", json={"show": show.pk, "seats": ["A1"]}).json()["id"])
        assert first["status"] == "confirmed"
        cancelled = a.delete(f"/api/v1/bookings/{first['id']}")
        assert cancelled.json()["status"] == "cancelled"
        again = poll_until_final(b, b.post("/api/v1/bookings", json={"show": show.pk, "seats": ["A1"]}).json()["id"])
    assert again["status"] == "confirmed"


def test_the_booking_accepted_first_wins(live_stack, show):
    """A's 202 is received before B is submitted: A is decided first and gets the seat."""
    alice, bob = UserFactory(), UserFactory()
    with live_stack.client(alice) as a, live_stack.client(bob) as b:
        for seat in ("B1", "B2", "B3"):
            first = a.post("/api/v1/bookings", json={"show": show.pk, "seats": [seat]})
            assert first.status_code == 202
            second = b.post("/api/v1/bookings", json={"show": show.pk, "seats": [seat]})
            assert poll_until_final(a, first.json()["id"])["status"] == "confirmed"
            lost = poll_until_final(b, second.json()["id"])
            assert (lost["status"], lost["failure_reason"]) == ("failed", "seats_unavailable")


def test_a_busy_show_lock_delays_the_decision_until_released(live_stack, show):
    """The worker that finds the show locked retries with backoff and decides later."""
    lock = show_lock(show.pk)
    assert lock.acquire()
    user = UserFactory()
    with live_stack.client(user) as client:
        booking_id = client.post("/api/v1/bookings", json={"show": show.pk, "quantity": 2}).json()["id"]
        time.sleep(1.5)
        assert client.get(f"/api/v1/bookings/{booking_id}").json()["status"] == "pending"
        lock.release()
        assert poll_until_final(client, booking_id, timeout=20)["status"] == "confirmed"


@override_settings(BOOKING_RECOVERY_GRACE_SECONDS=0)
def test_a_booking_whose_message_never_reached_the_broker_is_recovered(live_stack, show):
    # Written straight to PostgreSQL: committed, but no wake-up was ever published.
    booking = Booking.objects.create(user=UserFactory(), show=show, quantity=2)
    time.sleep(1)
    booking.refresh_from_db()
    assert booking.status == "pending"
    assert recover_pending_bookings.apply().get() == 1
    wait_until(
        lambda: Booking.objects.get(pk=booking.pk).status == "confirmed", timeout=20, what="the recovered booking"
    )


def test_a_redelivered_decision_changes_nothing(live_stack, show):
    user = UserFactory()
    with live_stack.client(user) as client:
        booking_id = client.post("/api/v1/bookings", json={"show": show.pk, "quantity": 3}).json()["id"]
        poll_until_final(client, booking_id)
    before = (list(Booking.objects.values()), list(BookedSeat.objects.values()))
    # The same wake-up again, as a redelivery after a lost ack would bring it.
    assert decide_show.apply(args=[show.pk], kwargs={"booking_id": booking_id}).get() == 0
    decide_show.delay(show.pk, booking_id=booking_id)
    time.sleep(1)
    assert (list(Booking.objects.values()), list(BookedSeat.objects.values())) == before


def test_users_list_their_bookings_over_http(live_stack, show):
    user, other = UserFactory(), UserFactory()
    with live_stack.client(user) as client, live_stack.client(other) as other_client:
        ids = [client.post("/api/v1/bookings", json={"show": show.pk, "quantity": 1}).json()["id"] for _ in range(2)]
        for booking_id in ids:
            poll_until_final(client, booking_id)
        listed = client.get("/api/v1/bookings?status=confirmed").json()
        assert [b["id"] for b in listed["results"]] == ids[::-1]
        assert other_client.get(f"/api/v1/bookings/{ids[0]}").status_code == 404
        assert other_client.delete(f"/api/v1/bookings/{ids[0]}").status_code == 404
        assert other_client.get(f"/api/v1/users/{user.pk}/bookings").status_code == 404
