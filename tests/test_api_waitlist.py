"""The waiting list over HTTP: POST /shows/{id}/waitlist, GET /waitlist, GET and DELETE
/waitlist/{id}, and taking an offer with POST /bookings/{id}/confirm. Every response is
checked against the published schema (tests/conftest.py)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.models import Booking, WaitlistEntry
from core.services.cancellation import booking_cancel
from core.services.decisions import booking_decide_batch
from tests.conftest import client_for
from tests.factories import ShowFactory, UserFactory
from tests.locking import pending_booking

pytestmark = pytest.mark.django_db


@pytest.fixture
def full_show():
    """One row of four seats, sold as two bookings of two."""
    show = ShowFactory(screen__rows=1, screen__seats_per_row=4, price=Decimal("8.00"))
    for seats in (["A1", "A2"], ["A3", "A4"]):
        pending_booking(UserFactory(), show, seats=seats)
    booking_decide_batch(show_id=show.pk)
    return show


def first_booking(show) -> Booking:
    return Booking.objects.filter(show=show, seats=["A1", "A2"]).get()


def join(client, show, quantity=2, *, slash=""):
    return client.post(f"/api/v1/shows/{show.pk}/waitlist{slash}", {"quantity": quantity}, format="json")


def test_join_answers_201_with_the_position(user_api, other_api, full_show):
    first = join(user_api, full_show)
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["show"] == full_show.pk
    assert (body["quantity"], body["status"], body["position"], body["booking"]) == (2, "waiting", 1, None)
    assert first["Location"] == f"/api/v1/waitlist/{body['id']}"
    second = join(other_api, full_show, 1, slash="/")
    assert (second.status_code, second.json()["position"]) == (201, 2)


def test_join_refusals(user_api, api, full_show, settings):
    assert join(user_api, full_show, 0).status_code == 400
    assert join(user_api, full_show, settings.BOOKING_MAX_SEATS + 1).status_code == 400
    assert user_api.post(f"/api/v1/shows/{full_show.pk}/waitlist", {}, format="json").status_code == 400
    assert api.post(f"/api/v1/shows/{full_show.pk}/waitlist", {"quantity": 1}, format="json").status_code == 401
    unknown = user_api.post("/api/v1/shows/999999999/waitlist", {"quantity": 1}, format="json")
    assert unknown.status_code == 404
    started = ShowFactory(starts_at=timezone.now() - timedelta(minutes=5))
    refused = join(user_api, started)
    assert (refused.status_code, refused.json()["code"]) == (400, "validation_error")
    assert "show" in refused.json()["details"]
    free = join(user_api, ShowFactory())
    assert (free.status_code, free.json()["code"]) == (409, "seats_available")
    joined = join(user_api, full_show)
    again = join(user_api, full_show, 1)
    assert (again.status_code, again.json()["code"]) == (409, "already_waiting")
    assert again.json()["details"] == {"id": joined.json()["id"]}


def test_list_read_and_leave(user_api, other_api, full_show):
    entry_id = join(user_api, full_show).json()["id"]
    listed = user_api.get("/api/v1/waitlist")
    assert listed.status_code == 200
    assert [(e["id"], e["status"], e["position"]) for e in listed.json()["results"]] == [(entry_id, "waiting", 1)]
    assert other_api.get("/api/v1/waitlist/").json()["count"] == 0
    assert user_api.get(f"/api/v1/waitlist/{entry_id}").json()["status"] == "waiting"
    assert other_api.get(f"/api/v1/waitlist/{entry_id}").status_code == 404
    assert other_api.delete(f"/api/v1/waitlist/{entry_id}").status_code == 404
    assert user_api.delete(f"/api/v1/waitlist/{entry_id}").status_code == 204
    assert user_api.delete(f"/api/v1/waitlist/{entry_id}/").status_code == 204
    left = user_api.get(f"/api/v1/waitlist/{entry_id}").json()
    assert (left["status"], left["position"]) == ("left", None)


def test_an_offer_arrives_on_the_list_and_is_confirmed(user, user_api, other_api, full_show):
    entry_id = join(user_api, full_show).json()["id"]
    leaving = first_booking(full_show)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)

    entry = user_api.get(f"/api/v1/waitlist/{entry_id}").json()
    assert entry["status"] == "offered"
    assert entry["position"] is None
    held = user_api.get("/api/v1/bookings", {"status": "held"}).json()["results"]
    assert [b["id"] for b in held] == [entry["booking"]]
    assert held[0]["offer"] is True
    assert held[0]["hold_expires_at"] == entry["offer_expires_at"]
    assert (held[0]["seats"], held[0]["total"]) == (["A1", "A2"], "16.00")

    left = user_api.delete(f"/api/v1/waitlist/{entry_id}")
    assert (left.status_code, left.json()["code"]) == (409, "already_offered")
    assert other_api.post(f"/api/v1/bookings/{entry['booking']}/confirm").status_code == 404
    confirmed = user_api.post(f"/api/v1/bookings/{entry['booking']}/confirm")
    assert confirmed.status_code == 200
    assert (confirmed.json()["status"], confirmed.json()["seats"]) == ("confirmed", ["A1", "A2"])
    assert user_api.post(f"/api/v1/bookings/{entry['booking']}/confirm/").status_code == 200
    assert user_api.get(f"/api/v1/waitlist/{entry_id}").json()["status"] == "accepted"


def test_confirm_refusals(user, user_api, full_show):
    entry_id = join(user_api, full_show).json()["id"]
    leaving = first_booking(full_show)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    offer_id = WaitlistEntry.objects.get(pk=entry_id).booking_id
    Booking.objects.filter(pk=offer_id).update(hold_expires_at=timezone.now() - timedelta(seconds=1))
    expired = user_api.post(f"/api/v1/bookings/{offer_id}/confirm")
    assert (expired.status_code, expired.json()["code"]) == (409, "hold_expired")

    kept = Booking.objects.filter(show=full_show, seats=["A3", "A4"]).get()
    not_offer = client_for(kept.user).post(f"/api/v1/bookings/{kept.pk}/confirm")
    assert (not_offer.status_code, not_offer.json()["code"]) == (409, "not_an_offer")

    paying = ShowFactory(screen__rows=1, screen__seats_per_row=2, payment_required=True)
    holder = UserFactory()
    pending_booking(holder, paying, seats=["A1", "A2"])
    booking_decide_batch(show_id=paying.pk)
    join(user_api, paying)
    booking_cancel(booking_id=Booking.objects.get(show=paying, user=holder).pk, user=holder)
    offer = Booking.objects.get(show=paying, offer=True)
    unpaid = user_api.post(f"/api/v1/bookings/{offer.pk}/confirm")
    assert (unpaid.status_code, unpaid.json()["code"]) == (409, "payment_required")
    assert user_api.post("/api/v1/bookings/00000000-0000-0000-0000-000000000000/confirm").status_code == 404
