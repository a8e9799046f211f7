"""The booking routes over HTTP (in-process): contract shapes, validation, visibility."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import Booking
from core.services.decisions import booking_decide_batch
from tests.factories import ShowFactory

pytestmark = pytest.mark.django_db

BOOKING_FIELDS = {
    "id",
    "status",
    "show",
    "seats",
    "quantity",
    "failure_reason",
    "created_at",
    "decided_at",
    "confirmed_at",
    "cancelled_at",
    "queue_position",
    # Selling (CONTRACT.md, additive)
    "tickets",
    "seat_category",
    "accessible",
    "reference",
    "total",
    "currency",
    "lines",
    # Holds (CONTRACT.md, additive)
    "hold_expires_at",
    "offer",
    # Payment (CONTRACT.md, additive)
    "refund",
}


def post(client, show, **body):
    return client.post("/api/v1/bookings", {"show": show.pk, **body})


def test_submit_answers_202_with_location_and_retry_after(user_api, show):
    response = post(user_api, show, seats=["A1", "A2"])
    assert response.status_code == 202
    body = response.json()
    assert set(body) == BOOKING_FIELDS
    assert body["status"] == "pending"
    assert body["seats"] == ["A1", "A2"]
    assert body["quantity"] == 2
    assert body["failure_reason"] is None
    assert body["decided_at"] is None
    assert response["Location"] == f"/api/v1/bookings/{body['id']}"
    assert int(response["Retry-After"]) >= 1


def test_quantity_request_has_no_seats_while_pending(user_api, show):
    body = post(user_api, show, quantity=3).json()
    assert (body["seats"], body["quantity"]) == ([], 3)


def test_unauthenticated_is_401(api, show):
    response = post(api, show, quantity=1)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"show": 987654, "quantity": 1}, "show"),
        ({"show": "abc", "quantity": 1}, "show"),
        ({"show": None, "quantity": 1}, "show"),
        ({"show": -1, "quantity": 1}, "show"),
        ({"show": 10**30, "quantity": 1}, "show"),
        ({"show": ..., "quantity": 1}, "show"),  # ... = leave "show" out
        ({"seats": "A1"}, "seats"),
        ({"seats": [1, 2]}, "seats"),
        ({"seats": [["A1"]]}, "seats"),
        ({"seats": ["A1", "A1"]}, "seats"),
        ({"seats": ["K1"]}, "seats"),
        ({"seats": ["A1 "]}, "seats"),
        ({"seats": ["a1"]}, "seats"),
        ({"seats": ["A01"]}, "seats"),
        ({"seats": ["A1\u0000"]}, "seats"),
        ({"seats": []}, "seats"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 11}, "quantity"),
        ({"quantity": 10**12}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
        ({"quantity": "2"}, None),  # DRF coerces numeric strings: accepted
        ({"quantity": True}, "quantity"),
        ({"seats": ["A1"], "quantity": 1}, "non_field_errors"),
        ({}, "non_field_errors"),
    ],
)
def test_validation_errors_are_400_with_field_details(user_api, show, body, field):
    payload = {"show": show.pk, **body}
    if body.get("show") is ...:
        del payload["show"]
    response = user_api.post("/api/v1/bookings", payload, format="json")
    if field is None:
        assert response.status_code == 202
        return
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["code"] == "validation_error"
    assert field in error["details"], error


def test_started_and_cancelled_shows_are_400(user_api):
    started = ShowFactory(starts_at=timezone.now() - timedelta(minutes=5))
    cancelled = ShowFactory(status="cancelled")
    for show in (started, cancelled):
        response = post(user_api, show, quantity=1)
        assert response.status_code == 400
        assert "show" in response.json()["details"]


def test_idempotency_over_http(user_api, show):
    first = user_api.post("/api/v1/bookings", {"show": show.pk, "seats": ["A1"]}, HTTP_IDEMPOTENCY_KEY="abc-123")
    replay = user_api.post("/api/v1/bookings", {"show": show.pk, "seats": ["A1"]}, HTTP_IDEMPOTENCY_KEY="abc-123")
    assert first.status_code == replay.status_code == 202
    assert replay.json()["id"] == first.json()["id"]
    other = user_api.post("/api/v1/bookings", {"show": show.pk, "seats": ["A2"]}, HTTP_IDEMPOTENCY_KEY="abc-123")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert Booking.objects.count() == 1


@pytest.mark.parametrize("key", ["", " padded", "x" * 256, "caf\u00e9"])
def test_bad_idempotency_keys_are_400(user_api, show, key):
    response = user_api.post("/api/v1/bookings", {"show": show.pk, "quantity": 1}, HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["details"]


def test_a_255_character_key_is_fine(user_api, show):
    response = user_api.post("/api/v1/bookings", {"show": show.pk, "quantity": 1}, HTTP_IDEMPOTENCY_KEY="k" * 255)
    assert response.status_code == 202


def test_poll_own_booking_and_not_anothers(user_api, other_api, staff_api, show):
    booking_id = post(user_api, show, quantity=1).json()["id"]
    response = user_api.get(f"/api/v1/bookings/{booking_id}")
    assert response.status_code == 200
    assert response["Retry-After"]
    assert other_api.get(f"/api/v1/bookings/{booking_id}").status_code == 404
    assert staff_api.get(f"/api/v1/bookings/{booking_id}").status_code == 200
    booking_decide_batch(show_id=show.pk)
    decided = user_api.get(f"/api/v1/bookings/{booking_id}")
    assert decided.json()["status"] == "confirmed"
    assert decided.json()["decided_at"]
    assert "Retry-After" not in decided


def test_pending_bookings_show_their_queue_position(user_api, other_api, show, user):
    other_show = ShowFactory()
    post(other_api, other_show, quantity=1)
    accepted = [post(api, show, quantity=1) for api in (user_api, other_api, user_api, user_api)]
    post(other_api, other_show, quantity=1)
    assert [r.json()["queue_position"] for r in accepted] == [0, 1, 2, 3]
    ids = [r.json()["id"] for r in accepted]
    mine = [ids[0], ids[2], ids[3]]
    assert [user_api.get(f"/api/v1/bookings/{i}").json()["queue_position"] for i in mine] == [0, 2, 3]
    listed = user_api.get("/api/v1/bookings").json()["results"]
    assert [(b["id"], b["queue_position"]) for b in listed] == [(ids[3], 3), (ids[2], 2), (ids[0], 0)]

    assert user_api.delete(f"/api/v1/bookings/{ids[0]}").json()["queue_position"] is None
    assert user_api.get(f"/api/v1/bookings/{ids[3]}").json()["queue_position"] == 2
    booking_decide_batch(show_id=show.pk)
    decided = user_api.get(f"/api/v1/bookings/{ids[3]}")
    assert (decided.json()["status"], decided.json()["queue_position"]) == ("confirmed", None)
    assert [b["queue_position"] for b in user_api.get("/api/v1/bookings").json()["results"]] == [None] * 3


def test_retry_after_grows_with_the_queue_position(user_api, show, settings):
    settings.BOOKING_POLL_RETRY_AFTER, settings.BOOKING_POLL_RETRY_AFTER_MAX = 1, 3
    settings.BOOKING_POLL_DECISIONS_PER_SECOND = 2
    accepted = [post(user_api, show, quantity=1) for _ in range(8)]
    assert [int(r["Retry-After"]) for r in accepted] == [1, 1, 1, 2, 2, 3, 3, 3]
    polled = [user_api.get(r["Location"]) for r in accepted]
    assert [int(r["Retry-After"]) for r in polled] == [1, 1, 1, 2, 2, 3, 3, 3]


def test_the_schema_documents_the_queue_position(api):
    field = api.get("/swagger.json").json()["definitions"]["BookingOutput"]["properties"]["queue_position"]
    assert (field["type"], field["minimum"], field["x-nullable"]) == ("integer", 0, True)


def test_a_list_page_counts_positions_in_one_query(user_api, show):
    """Whatever the number of pending bookings on the page, one query counts their positions."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert user_api.get("/api/v1/bookings").status_code == 200
        return len(queries)

    post(user_api, show, quantity=1)
    one = list_queries()
    for _ in range(5):
        post(user_api, show, quantity=1)
    assert list_queries() == one


def test_unknown_booking_is_404(user_api):
    assert user_api.get("/api/v1/bookings/00000000-0000-0000-0000-000000000000").status_code == 404


def test_cancel_over_http(user_api, other_api, show):
    booking_id = post(user_api, show, seats=["A1"]).json()["id"]
    assert other_api.delete(f"/api/v1/bookings/{booking_id}").status_code == 404
    response = user_api.delete(f"/api/v1/bookings/{booking_id}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    again = user_api.delete(f"/api/v1/bookings/{booking_id}")
    assert (again.status_code, again.json()["cancelled_at"]) == (200, response.json()["cancelled_at"])


def test_cancelling_a_failed_booking_is_409(user_api, other_api, show):
    post(other_api, show, seats=["A1"])
    loser = post(user_api, show, seats=["A1"]).json()["id"]
    booking_decide_batch(show_id=show.pk)
    response = user_api.delete(f"/api/v1/bookings/{loser}")
    assert response.status_code == 409
    assert response.json()["code"] == "booking_failed"


def test_lists_are_own_newest_first_and_filterable(user_api, other_api, show, user, other_user, staff_api):
    ids = [post(user_api, show, quantity=1).json()["id"] for _ in range(3)]
    post(other_api, show, quantity=1)
    user_api.delete(f"/api/v1/bookings/{ids[0]}")
    body = user_api.get("/api/v1/bookings").json()
    assert body["count"] == 3
    assert [b["id"] for b in body["results"]] == ids[::-1]
    assert [b["id"] for b in user_api.get("/api/v1/bookings?status=cancelled").json()["results"]] == [ids[0]]
    assert user_api.get("/api/v1/bookings?status=nope").status_code == 400

    assert user_api.get(f"/api/v1/users/{user.pk}/bookings").json()["count"] == 3
    assert user_api.get(f"/api/v1/users/{other_user.pk}/bookings").status_code == 404
    assert staff_api.get(f"/api/v1/users/{user.pk}/bookings?status=pending").json()["count"] == 2


@pytest.mark.parametrize("time_zone", ["UTC", "Europe/Paris"])
def test_the_lean_booking_body_matches_the_documented_serializer(user, other_user, show, settings, time_zone):
    """booking_representation (every booking body) renders exactly what DRF renders from
    BookingOutputSerializer's fields (whose types the schema publishes), in every state and
    time zone."""
    from rest_framework import serializers

    from booking_api.serializers.bookings import BookingOutputSerializer, booking_representation

    class DrfRendered(BookingOutputSerializer):
        to_representation = serializers.ModelSerializer.to_representation

    from core.selectors import bookings_set_queue_positions
    from core.services.cancellation import booking_cancel
    from core.services.submission import booking_submit

    settings.TIME_ZONE = time_zone
    pending, _ = booking_submit(user_id=user.pk, show_id=show.pk, seats=["B2", "B3"])
    booking_submit(user_id=other_user.pk, show_id=show.pk, seats=["C1"])
    quantity, _ = booking_submit(user_id=user.pk, show_id=show.pk, quantity=2)
    failed, _ = booking_submit(user_id=other_user.pk, show_id=show.pk, seats=["B3"])
    states = [Booking.objects.get(pk=pending.pk), Booking.objects.get(pk=quantity.pk)]
    bookings_set_queue_positions(bookings=states)
    assert [b.queue_position for b in states] == [0, 2]
    booking_decide_batch(show_id=show.pk)
    cancelled = booking_cancel(booking_id=pending.pk, user=user)
    states += [cancelled, *Booking.objects.filter(pk__in=[quantity.pk, failed.pk])]
    assert {b.status for b in states} == {"pending", "confirmed", "failed", "cancelled"}
    for booking in states:
        assert booking_representation(booking) == DrfRendered(booking).data


_BODIES = [
    {"show": 7, "quantity": 2},
    {"show": 7, "seats": ["A1", "B12"]},
    {"show": 7, "seats": [], "quantity": 3},
    {"show": 7},
    {"show": 2**63 - 1, "quantity": -(2**31)},
    {"show": 7, "seats": ["A1"], "extra": 1},
    {"show": "7", "quantity": "2"},
    {"show": 7.0, "quantity": 1},
    {"show": True, "quantity": 1},
    {"show": 0, "quantity": 1},
    {"show": 2**63, "quantity": 1},
    {"show": 7, "quantity": 2**31},
    {"show": 7, "quantity": None},
    {"show": 7, "seats": None},
    {"show": None},
    {"quantity": 1},
    {"show": 7, "seats": "A1"},
    {"show": 7, "seats": [1, 2]},
    {"show": 7, "seats": ["A1\x00"]},
    {"show": 7, "seats": ["\ud800"]},
    {"show": 7, "seats": ["Ä1"]},
    {"show": 7, "seats": ["ABCDEFGHI"]},
    {"show": 7, "seats": [" A1 ", ""]},
    {"show": 7, "seats": ["A1"] * 101},
    {"show": 7, "seats": [["A1"]]},
    [],
    "show",
]


@pytest.mark.parametrize("body", _BODIES, ids=[repr(body)[:40] for body in _BODIES])
def test_the_direct_booking_input_check_matches_the_serializer(body):
    """booking_create_input (the submission's hot path) accepts exactly what
    BookingCreateInputSerializer accepts, with the same values, and lets the serializer
    refuse everything else with its details."""
    from rest_framework.exceptions import ValidationError

    from booking_api.serializers.bookings import BookingCreateInputSerializer, booking_create_input

    serializer = BookingCreateInputSerializer(data=body)
    if serializer.is_valid():
        assert booking_create_input(body) == dict(serializer.validated_data)
    else:
        with pytest.raises(ValidationError) as refused:
            booking_create_input(body)
        assert refused.value.detail == serializer.errors
