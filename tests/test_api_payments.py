"""POST /bookings/{id}/pay, POST /payments/webhook and refunds on DELETE /bookings/{id}: every
status code of the contract (each response is checked against the published schema by
conftest's hook)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.models import Booking, Payment, PaymentEvent
from core.payments import fake, signing
from tests.factories import UserFactory
from tests.locking import pending_booking
from tests.test_services_holds import decided, overdue, paying_show
from tests.test_services_payments import settle_now

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(user):
    booking = decided(pending_booking(user, paying_show(), seats=["A1", "A2"]))
    assert booking.status == "held"
    return booking


def pay(client, booking, token="tok_ok", key="key-1"):  # noqa: S107 - a fake payment token
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/api/v1/bookings/{booking.pk}/pay", {"payment_token": token}, **headers)


def webhook(api, payload: bytes, headers: dict):
    return api.post(
        "/api/v1/payments/webhook",
        data=payload,
        content_type="application/json",
        HTTP_PAYMENT_SIGNATURE=headers.get(signing.HEADER, ""),
    )


def test_tok_ok_is_200_and_the_booking_confirmed(user_api, held):
    response = pay(user_api, held)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["total"], body["refund"]) == ("confirmed", "19.00", None)
    assert body["confirmed_at"]
    # A retry with the key: 200 and the same booking, one charge.
    again = pay(user_api, held)
    assert (again.status_code, again.json()["id"]) == (200, body["id"])
    assert Payment.objects.count() == 1
    # With the trailing slash too.
    assert user_api.post(f"/api/v1/bookings/{held.pk}/pay/", {"payment_token": "tok_ok"}).status_code == 409


def test_tok_declined_is_402_and_the_booking_still_held(user_api, held):
    response = pay(user_api, held, token="tok_declined")
    assert response.status_code == 402
    assert response.json()["code"] == "payment_declined"
    assert user_api.get(f"/api/v1/bookings/{held.pk}").json()["status"] == "held"


def test_tok_async_ok_is_202_then_the_webhook_confirms_it(api, user_api, held):
    response = pay(user_api, held, token="tok_async_ok")
    assert response.status_code == 202
    assert response.json()["status"] == "held"
    payment = Payment.objects.get(booking=held)
    settle_now(payment)
    payload, headers = fake.webhook_request(intent_id=payment.intent_id)
    delivered = webhook(api, payload, headers)
    assert delivered.status_code == 200, delivered.json()
    assert delivered.json() == {"received": True}
    assert user_api.get(f"/api/v1/bookings/{held.pk}").json()["status"] == "confirmed"
    assert webhook(api, payload, headers).status_code == 200
    assert PaymentEvent.objects.count() == 1


def test_a_webhook_with_a_bad_signature_is_400_and_changes_nothing(api, user_api, held):
    pay(user_api, held, token="tok_async_ok")
    payment = Payment.objects.get(booking=held)
    settle_now(payment)
    payload, _ = fake.webhook_request(intent_id=payment.intent_id)
    forged = {signing.HEADER: signing.sign(payload, secret="not-the-webhook-secret-at-all")}
    response = webhook(api, payload, forged)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert webhook(api, payload, {}).status_code == 400
    assert Booking.objects.get(pk=held.pk).status == "held"
    assert Payment.objects.get(pk=payment.pk).status == "processing"


def test_after_the_hold_expired_paying_is_409_hold_expired(user_api, held):
    overdue(held)
    response = pay(user_api, held)
    assert response.status_code == 409
    assert response.json()["code"] == "hold_expired"


def test_another_users_booking_is_404(other_api, held):
    assert pay(other_api, held).status_code == 404


def test_unauthenticated_is_401(api, held):
    assert pay(api, held).status_code == 401


@pytest.mark.parametrize("body", [{}, {"payment_token": ""}, {"payment_token": None}, {"payment_token": "x" * 256}])
def test_a_missing_token_is_400(user_api, held, body):
    response = user_api.post(f"/api/v1/bookings/{held.pk}/pay", body, format="json")
    assert response.status_code == 400
    assert "payment_token" in response.json()["details"]


def test_a_booking_that_is_not_held_is_409_with_its_reason(user, user_api):
    show = paying_show()
    pending = pending_booking(user, show, seats=["A1"])
    assert pay(user_api, pending).json()["code"] == "booking_pending"
    free = decided(pending_booking(user, paying_show(), seats=["A1"]))
    user_api.delete(f"/api/v1/bookings/{free.pk}")
    response = pay(user_api, free)
    assert (response.status_code, response.json()["code"]) == (409, "booking_not_held")


def test_a_second_key_while_one_is_processing_is_409(user_api, held):
    assert pay(user_api, held, token="tok_async_ok").status_code == 202
    response = pay(user_api, held, key="key-2")
    assert (response.status_code, response.json()["code"]) == (409, "payment_in_progress")


def test_a_paid_booking_cancelled_before_the_cutoff_shows_its_refund(user, user_api, settings):
    settings.REFUND_CUTOFF_MINUTES = 60
    booking = decided(pending_booking(user, paying_show(starts_at=timezone.now() + timedelta(days=1)), seats=["A1"]))
    pay(user_api, booking)
    response = user_api.delete(f"/api/v1/bookings/{booking.pk}")
    assert response.status_code == 200
    # Sent after the commit (the reconciliation job sends it if this process dies first).
    assert response.json()["refund"]["amount"] == "9.50"
    assert response.json()["refund"]["status"] in ("pending", "refunded")
    listed = user_api.get("/api/v1/bookings").json()["results"][0]
    assert listed["refund"]["amount"] == "9.50"


def test_a_paid_booking_cancelled_after_the_cutoff_is_409(user, user_api, settings):
    settings.REFUND_CUTOFF_MINUTES = 60
    show = paying_show(starts_at=timezone.now() + timedelta(minutes=20))
    booking = decided(pending_booking(user, show, seats=["A1"]))
    pay(user_api, booking)
    response = user_api.delete(f"/api/v1/bookings/{booking.pk}")
    assert (response.status_code, response.json()["code"]) == (409, "refund_window_closed")
    assert Booking.objects.get(pk=booking.pk).status == "confirmed"


def test_the_webhook_has_its_own_bounded_rate(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "webhook": "2/min"},
    }
    from booking_api.throttles import WebhookThrottle

    WebhookThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    try:
        codes = [webhook(api, b"{}", {}).status_code for _ in range(3)]
    finally:
        from rest_framework.settings import api_settings

        WebhookThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    assert codes == [400, 400, 429]


def test_a_staff_member_may_pay_anyones_booking(staff_api, held):
    assert pay(staff_api, held).status_code == 200
    assert Payment.objects.get(booking=held).amount == Decimal("19.00")


def test_the_refund_field_is_null_for_bookings_without_one(user_api, held):
    assert user_api.get(f"/api/v1/bookings/{held.pk}").json()["refund"] is None
    other = UserFactory()
    assert Payment.objects.filter(booking__user=other).count() == 0
