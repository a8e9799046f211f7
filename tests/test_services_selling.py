"""Selling through the booking services and the API: ticket types, seat categories, wheelchair
and companion seats, prices fixed at decision, references, and the per-user limits."""

import threading
from decimal import Decimal

import psycopg2
import pytest
from django.db import connection

from core import references
from core.exceptions import Conflict, ValidationFailed
from core.models import Booking, BookingLine, ShowPrice
from core.services import selling
from core.services.decisions import booking_decide_batch
from core.services.submission import booking_submit
from tests.factories import ScreenFactory, ShowFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hall():
    """5 rows of 8: row E premium, A1/A2 wheelchair spaces, A3/A4 their companion seats."""
    screen = ScreenFactory(
        rows=5, seats_per_row=8, premium_rows=["E"], accessible_seats=["A1", "A2"], companion_seats=["A3", "A4"]
    )
    show = ShowFactory(screen=screen, price=Decimal("10.00"))
    ShowPrice.objects.create(show=show, ticket_type="child", seat_category="standard", amount=Decimal("6.00"))
    return show


def submit(user, show, **kwargs) -> Booking:
    booking, created = booking_submit(user_id=user.pk, show_id=show.pk, **kwargs)
    assert created
    return booking


def decided(booking) -> Booking:
    booking_decide_batch(show_id=booking.show_id)
    return Booking.objects.get(pk=booking.pk)


def test_a_v1_request_gets_standard_seats_adult_prices_and_a_reference(user, hall):
    booking = decided(submit(user, hall, quantity=2))
    assert booking.status == "confirmed"
    assert booking.seats == ["C4", "C5"]
    assert booking.total == Decimal("20.00")
    assert booking.currency == "EUR"
    assert references.PATTERN.match(booking.reference)
    lines = list(booking.lines.values_list("seat_label", "seat_category", "ticket_type", "amount"))
    assert lines == [("C4", "standard", "adult", Decimal("10.00")), ("C5", "standard", "adult", Decimal("10.00"))]


def test_premium_with_ticket_types_and_the_fallback_price(user, hall, settings):
    settings.BOOKING_PREMIUM_SURCHARGE = "2.50"
    booking = decided(submit(user, hall, quantity=3, seat_category="premium", tickets={"adult": 2, "child": 1}))
    assert booking.status == "confirmed"
    assert {label[0] for label in booking.seats} == {"E"}
    # Adult premium: 10.00 + 2.50; child premium: the child's standard 6.00 + 2.50.
    assert booking.total == Decimal("12.50") * 2 + Decimal("8.50")
    assert sorted(BookingLine.objects.filter(booking=booking).values_list("ticket_type", flat=True)) == [
        "adult",
        "adult",
        "child",
    ]


def test_a_category_sold_out_fails_though_other_seats_are_free(user, other_user, hall):
    assert decided(submit(user, hall, quantity=8, seat_category="premium")).status == "confirmed"
    late = decided(submit(other_user, hall, quantity=1, seat_category="premium"))
    assert (late.status, late.failure_reason) == ("failed", "sold_out")


def test_accessible_gets_a_wheelchair_space_and_companion_at_standard_price(user, hall):
    booking = decided(submit(user, hall, quantity=2, accessible=True))
    assert booking.status == "confirmed"
    assert sorted(booking.seats) == ["A2", "A3"]
    categories = dict(booking.lines.values_list("seat_label", "seat_category"))
    assert categories == {"A2": "accessible", "A3": "companion"}
    assert booking.total == Decimal("20.00")


def test_best_available_never_gives_wheelchair_or_companion_seats_unless_asked(user, other_user, hall):
    # Every standard seat outside row A is taken; row A keeps A5..A8 standard.
    for row in "BCD":
        decided(submit(UserFactory(), hall, seats=[f"{row}{i}" for i in range(1, 9)]))
    assert decided(submit(user, hall, quantity=4)).seats == ["A5", "A6", "A7", "A8"]
    refused = decided(submit(other_user, hall, quantity=1))
    assert (refused.status, refused.failure_reason) == ("failed", "sold_out")


def test_exact_companion_seat_needs_a_wheelchair_space_in_the_booking(user, hall):
    with pytest.raises(ValidationFailed) as refused:
        booking_submit(user_id=user.pk, show_id=hall.pk, seats=["A3"])
    assert "companion" in refused.value.details["seats"][0]
    booking = decided(submit(user, hall, seats=["A1", "A3"]))
    assert booking.status == "confirmed"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"quantity": 2, "tickets": {"adult": 1}}, "tickets"),
        ({"quantity": 1, "tickets": {"pensioner": 1}}, "tickets"),
        ({"quantity": 1, "tickets": {"adult": -1, "child": 2}}, "tickets"),
        ({"seats": ["B1"], "seat_category": "premium"}, "seat_category"),
        ({"seats": ["B1"], "accessible": True}, "accessible"),
        ({"quantity": 1, "seat_category": "accessible"}, "seat_category"),
        ({"quantity": 1, "seat_category": "companion"}, "seat_category"),
    ],
)
def test_invalid_selling_fields_are_refused(user, hall, fields, field):
    with pytest.raises(ValidationFailed) as refused:
        booking_submit(user_id=user.pk, show_id=hall.pk, **fields)
    assert field in refused.value.details
    assert not Booking.objects.exists()


def test_prices_are_fixed_when_the_booking_is_decided(user, hall):
    booking = decided(submit(user, hall, quantity=1))
    hall.price = Decimal("99.00")
    hall.save()
    ShowPrice.objects.create(show=hall, ticket_type="adult", seat_category="standard", amount=Decimal("50.00"))
    booking.refresh_from_db()
    assert booking.total == Decimal("10.00")
    assert booking.lines.get().amount == Decimal("10.00")


def test_a_user_never_holds_more_than_the_limit_in_one_show(user, other_user, hall, settings):
    settings.BOOKING_MAX_SEATS_PER_USER_PER_SHOW = 4
    first = submit(user, hall, quantity=3)
    # Decided in the same batch as the first: the limit counts the batch's earlier wins too.
    second = submit(user, hall, quantity=2)
    third = submit(user, hall, quantity=1)
    others = submit(other_user, hall, quantity=4)
    booking_decide_batch(show_id=hall.pk)
    outcomes = {b.pk: (b.status, b.failure_reason) for b in Booking.objects.all()}
    assert outcomes[first.pk] == ("confirmed", None)
    assert outcomes[second.pk] == ("failed", "limit_exceeded")
    assert outcomes[third.pk] == ("confirmed", None)
    assert outcomes[others.pk] == ("confirmed", None)
    # A cancelled booking frees its share of the limit.
    from core.services.cancellation import booking_cancel

    booking_cancel(booking_id=first.pk, user=user)
    assert decided(submit(user, hall, quantity=3)).status == "confirmed"


def test_too_many_pending_is_refused_and_a_replay_still_answers(user, hall, settings):
    settings.BOOKING_MAX_PENDING_PER_USER = 2
    first, _ = booking_submit(user_id=user.pk, show_id=hall.pk, quantity=1, idempotency_key="k1")
    submit(user, hall, quantity=1)
    with pytest.raises(selling.TooManyPending):
        booking_submit(user_id=user.pk, show_id=hall.pk, quantity=1)
    replay, created = booking_submit(user_id=user.pk, show_id=hall.pk, quantity=1, idempotency_key="k1")
    assert (replay.pk, created) == (first.pk, False)
    assert Booking.objects.filter(user=user).count() == 2
    booking_decide_batch(show_id=hall.pk)
    submit(user, hall, quantity=1)  # decided ones no longer count


def test_api_answers_429_too_many_pending_with_retry_after(user_api, hall, settings):
    settings.BOOKING_MAX_PENDING_PER_USER = 1
    assert user_api.post("/api/v1/bookings", {"show": hall.pk, "quantity": 1}, format="json").status_code == 202
    refused = user_api.post("/api/v1/bookings", {"show": hall.pk, "quantity": 1}, format="json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_pending"
    assert refused["Retry-After"] == "1"


def test_a_reference_drawn_twice_is_drawn_again(user, other_user, hall, monkeypatch):
    taken = decided(submit(user, hall, quantity=1)).reference
    draws = iter([taken, "ABCDEFGH"])
    monkeypatch.setattr(references, "new_reference", lambda: next(draws))
    booking = decided(submit(other_user, hall, quantity=1))
    assert (booking.status, booking.reference) == ("confirmed", "ABCDEFGH")
    assert BookingLine.objects.filter(booking=booking).count() == 1


def test_bookings_are_found_by_reference(user_api, other_api, staff_api, user, hall):
    booking = decided(submit(user, hall, quantity=2, tickets={"adult": 1, "child": 1}))
    typed = f"{booking.reference[:4].lower()}-{booking.reference[4:].lower()}"
    found = user_api.get(f"/api/v1/bookings?reference={typed}").json()
    assert [b["id"] for b in found["results"]] == [str(booking.pk)]
    body = found["results"][0]
    assert body["reference"] == booking.reference
    assert body["total"] == "16.00"
    assert body["currency"] == "EUR"
    assert body["tickets"] == {"adult": 1, "child": 1, "senior": 0, "student": 0}
    assert sorted(line["ticket_type"] for line in body["lines"]) == ["adult", "child"]
    assert user_api.get(f"/api/v1/bookings/{booking.pk}").json() == body
    assert other_api.get(f"/api/v1/bookings?reference={booking.reference}").json()["count"] == 0
    assert staff_api.get(f"/api/v1/bookings?reference={booking.reference}").json()["count"] == 1
    assert user_api.get("/api/v1/bookings?reference=nonsense").json()["count"] == 0


def test_the_api_takes_the_selling_fields(user_api, hall):
    response = user_api.post(
        "/api/v1/bookings",
        {"show": hall.pk, "quantity": 2, "seat_category": "premium", "tickets": {"student": 2}},
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["seat_category"], body["tickets"]["student"], body["reference"], body["total"]) == (
        "premium",
        2,
        None,
        None,
    )
    assert body["lines"] == []
    final = user_api.get(f"/api/v1/bookings/{decided(Booking.objects.get(pk=body['id'])).pk}").json()
    assert final["total"] == "24.00"  # 2 x (10.00 + the default 2.00 surcharge)
    bad = user_api.post("/api/v1/bookings", {"show": hall.pk, "seats": ["A4"], "tickets": {"adult": 1}}, format="json")
    assert bad.status_code == 400
    assert "seats" in bad.json()["details"]


@pytest.mark.django_db(transaction=True)
def test_two_submissions_racing_cannot_pass_the_pending_limit(settings):
    """Another submission of the same user holds the user's lock with its pending row not yet
    committed; ours waits for it, then counts that row and is refused."""
    settings.BOOKING_MAX_PENDING_PER_USER = 1
    user, hall = UserFactory(), ShowFactory()
    params = connection.get_connection_params()
    other = psycopg2.connect(**params)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [selling.PENDING_LOCK_NAMESPACE, user.pk])
            cursor.execute(
                "INSERT INTO core_booking (id, user_id, show_id, status, seats, quantity, request_fingerprint, "
                "decide_attempts, created_at) VALUES (gen_random_uuid(), %s, %s, 'pending', '{}', 1, '', 0, now())",
                [user.pk, hall.pk],
            )
        outcome = {}

        def ours():
            try:
                booking_submit(user_id=user.pk, show_id=hall.pk, quantity=1)
                outcome["result"] = "accepted"
            except selling.TooManyPending:
                outcome["result"] = "refused"
            finally:
                connection.close()

        thread = threading.Thread(target=ours)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive(), "our submission did not wait for the other's lock"
        other.commit()
        thread.join(timeout=30)
        assert outcome == {"result": "refused"}
        assert Booking.objects.filter(user=user, status="pending").count() == 1
    finally:
        other.close()


def test_a_replay_matches_its_selling_fields(user, hall):
    first, _ = booking_submit(
        user_id=user.pk, show_id=hall.pk, quantity=2, tickets={"adult": 1, "child": 1}, idempotency_key="k"
    )
    replay, created = booking_submit(
        user_id=user.pk, show_id=hall.pk, quantity=2, tickets={"child": 1, "adult": 1}, idempotency_key="k"
    )
    assert (replay.pk, created) == (first.pk, False)
    with pytest.raises(Conflict):
        booking_submit(user_id=user.pk, show_id=hall.pk, quantity=2, seat_category="premium", idempotency_key="k")
