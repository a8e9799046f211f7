"""Payments: a held booking is paid through the provider, every charge ends as a confirmed
booking or a refund, and the expiry and a payment are decided once under the booking's lock.

The fake provider's ledger is a real PostgreSQL table; the provider is only ever reached
through core.payments.provider(), as in production.
"""

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.exceptions import Conflict, DependencyUnavailable, NotFound, PaymentDeclined, ValidationFailed
from core.models import BookedSeat, Booking, FakeCharge, Payment, PaymentEvent, WebhookDelivery, WebhookEndpoint
from core.payments import Charge, ChargeStatus, fake, signing
from core.services.cancellation import booking_cancel
from core.services.catalogue import show_cancel
from core.services.holds import holds_expire_show
from core.services.payments import (
    booking_pay,
    booking_refund,
    payment_apply,
    payment_webhook_receive,
    payments_reconcile,
)
from tests.factories import UserFactory
from tests.locking import Background, breakpoint_on, pending_booking, wait_until_waiting
from tests.test_services_holds import ROW_LOCK_WAITS, decided, overdue, paying_show, seats_of


def held_booking(user=None, show=None, seats=("A1", "A2")) -> Booking:
    booking = decided(pending_booking(user or UserFactory(), show or paying_show(), seats=list(seats)))
    assert booking.status == "held"
    return booking


def pay(booking, token="tok_ok", key="key-1", user=None):  # noqa: S107 - a fake payment token
    return booking_pay(booking_id=booking.pk, user=user or booking.user, token=token, idempotency_key=key)


def fresh(booking) -> Booking:
    return Booking.objects.get(pk=booking.pk)


def settle_now(payment) -> None:
    """The fake charge's moment has come (the async tokens settle later)."""
    FakeCharge.objects.filter(intent_id=payment.intent_id).update(settles_at=timezone.now() - timedelta(seconds=1))


def webhook_for(payment) -> tuple[bytes, dict]:
    settle_now(payment)
    request = fake.webhook_request(intent_id=payment.intent_id)
    assert request is not None
    return request


# ---- paying ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tok_ok_confirms_the_held_booking_with_one_charge_of_its_total():
    booking = held_booking()
    result = pay(booking)
    assert not result.processing
    assert (result.booking.status, result.booking.confirmed_at is not None) == ("confirmed", True)
    payment = Payment.objects.get(booking=booking)
    assert (payment.status, payment.amount, payment.currency) == ("succeeded", Decimal("19.00"), "EUR")
    assert FakeCharge.objects.get(intent_id=payment.intent_id).amount == Decimal("19.00")
    assert seats_of(booking) == ["A1", "A2"]
    assert booking_refund(fresh(booking)) is None


@pytest.mark.django_db
def test_the_same_key_again_is_the_same_charge_and_answers_the_confirmed_booking():
    booking = held_booking()
    pay(booking)
    again = pay(booking)
    assert again.booking.status == "confirmed"
    assert Payment.objects.filter(booking=booking).count() == 1
    assert FakeCharge.objects.count() == 1
    with pytest.raises(Conflict) as other_key:
        pay(booking, key="key-2")
    assert other_key.value.code == "booking_already_paid"
    with pytest.raises(Conflict) as other_token:
        pay(booking, token="tok_async_ok")
    assert other_token.value.code == "idempotency_key_reused"


@pytest.mark.django_db
def test_a_declined_payment_leaves_the_booking_held_and_a_new_key_may_pay():
    booking = held_booking()
    with pytest.raises(PaymentDeclined) as declined:
        pay(booking, token="tok_declined")
    assert declined.value.code == "payment_declined"
    assert fresh(booking).status == "held"
    assert Payment.objects.get(booking=booking).status == "declined"
    # The same key replays the refusal without calling the provider again.
    with pytest.raises(PaymentDeclined):
        pay(booking, token="tok_declined")
    assert FakeCharge.objects.count() == 1
    assert pay(booking, key="key-2").booking.status == "confirmed"


@pytest.mark.django_db
def test_an_unknown_token_is_declined():
    booking = held_booking()
    with pytest.raises(PaymentDeclined) as declined:
        pay(booking, token="tok_made_up")
    assert declined.value.details == {"payment_token": ["invalid_payment_method"]}


@pytest.mark.django_db
def test_who_and_what_may_be_paid():
    booking = held_booking()
    with pytest.raises(NotFound):
        pay(booking, user=UserFactory())
    pending = pending_booking(booking.user, booking.show, seats=["B1"])
    with pytest.raises(Conflict) as refused:
        pay(pending)
    assert refused.value.code == "booking_pending"
    booking_cancel(booking_id=booking.pk, user=booking.user)
    with pytest.raises(Conflict) as refused:
        pay(booking)
    assert refused.value.code == "booking_not_held"
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_after_the_deadline_the_hold_is_not_paid_even_before_the_expiry_job_ran():
    booking = held_booking()
    overdue(booking)
    with pytest.raises(Conflict) as refused:
        pay(booking)
    assert refused.value.code == "hold_expired"
    holds_expire_show(show_id=booking.show_id, now=timezone.now())
    with pytest.raises(Conflict) as refused:
        pay(booking, key="key-2")
    assert refused.value.code == "hold_expired"
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_the_fake_provider_refuses_to_charge_unless_allowed(settings):
    settings.PAYMENT_FAKE_ALLOWED = False
    booking = held_booking()
    with pytest.raises(DependencyUnavailable) as unavailable:
        pay(booking)
    assert unavailable.value.code == "payment_provider_unavailable"
    # The record stays (created), for the client's retry or the reconciliation job.
    assert Payment.objects.get(booking=booking).status == "created"
    assert fresh(booking).status == "held"


@pytest.mark.django_db
def test_a_second_key_while_a_charge_is_being_decided_is_refused():
    booking = held_booking()
    assert pay(booking, token="tok_async_ok").processing
    with pytest.raises(Conflict) as refused:
        pay(booking, key="key-2")
    assert refused.value.code == "payment_in_progress"


# ---- asynchronous results: the webhook ----------------------------------------------------


@pytest.mark.django_db
def test_tok_async_ok_is_processing_until_its_webhook_confirms_it_once():
    booking = held_booking()
    result = pay(booking, token="tok_async_ok")
    assert result.processing
    assert fresh(booking).status == "held"
    payment = Payment.objects.get(booking=booking)
    assert payment.status == "processing"
    # Still processing at the provider: no webhook yet.
    assert fake.webhook_request(intent_id=payment.intent_id) is None
    payload, headers = webhook_for(payment)
    payment_webhook_receive(payload=payload, headers=headers)
    assert fresh(booking).status == "confirmed"
    assert PaymentEvent.objects.count() == 1
    # Delivered twice: no second effect.
    payment_webhook_receive(payload=payload, headers=headers)
    assert PaymentEvent.objects.count() == 1
    assert Payment.objects.get(booking=booking).status == "succeeded"
    # The client's retry with the key now answers the confirmed booking.
    assert pay(booking, token="tok_async_ok").booking.status == "confirmed"


@pytest.mark.django_db
def test_tok_async_fail_leaves_the_booking_held():
    booking = held_booking()
    pay(booking, token="tok_async_fail")
    payload, headers = webhook_for(Payment.objects.get(booking=booking))
    payment_webhook_receive(payload=payload, headers=headers)
    assert fresh(booking).status == "held"
    assert Payment.objects.get(booking=booking).status == "failed"
    with pytest.raises(PaymentDeclined):
        pay(booking, token="tok_async_fail")


@pytest.mark.django_db
def test_a_webhook_with_a_bad_or_stale_signature_changes_nothing(settings):
    booking = held_booking()
    pay(booking, token="tok_async_ok")
    payload, headers = webhook_for(Payment.objects.get(booking=booking))
    forged = {**headers, signing.HEADER: signing.sign(payload, secret="another-secret-of-some-length")}
    stale = {
        **headers,
        signing.HEADER: signing.sign(payload, secret=settings.PAYMENT_WEBHOOK_SECRET, timestamp=1_000_000_000),
    }
    tampered = payload.replace(b"succeeded", b"failed")
    for body, head in ((payload, forged), (payload, stale), (tampered, headers), (payload, {})):
        with pytest.raises(ValidationFailed) as refused:
            payment_webhook_receive(payload=body, headers=head)
        assert refused.value.code == "invalid_signature"
    settings.PAYMENT_WEBHOOK_SECRET = ""
    with pytest.raises(ValidationFailed):
        payment_webhook_receive(payload=payload, headers=headers)
    assert fresh(booking).status == "held"
    assert not PaymentEvent.objects.exists()


@pytest.mark.django_db
def test_an_event_about_an_unknown_charge_is_acknowledged_and_ignored(settings):
    body = {
        "id": "evt_x",
        "data": {"intent_id": "pi_nobody", "status": "succeeded", "amount": "1.00", "currency": "EUR"},
    }
    payload = json.dumps(body).encode()
    headers = {signing.HEADER: signing.sign(payload, secret=settings.PAYMENT_WEBHOOK_SECRET)}
    assert payment_webhook_receive(payload=payload, headers=headers) is None


@pytest.mark.django_db
def test_a_success_after_the_hold_expired_is_refunded_never_a_booking_without_seats(
    django_capture_on_commit_callbacks,
):
    booking = held_booking()
    pay(booking, token="tok_async_ok")
    overdue(booking)
    holds_expire_show(show_id=booking.show_id, now=timezone.now())
    payload, headers = webhook_for(Payment.objects.get(booking=booking))
    with django_capture_on_commit_callbacks(execute=True):
        payment_webhook_receive(payload=payload, headers=headers)
    booking = fresh(booking)
    assert (booking.status, seats_of(booking)) == ("expired", [])
    payment = Payment.objects.get(booking=booking)
    assert (payment.status, payment.refund_status, payment.refund_amount) == ("succeeded", "refunded", Decimal("19"))
    assert FakeCharge.objects.get(intent_id=payment.intent_id).refunded_amount == Decimal("19.00")
    assert booking_refund(booking) == {"amount": Decimal("19.00"), "status": "refunded"}
    with pytest.raises(Conflict) as refused:
        pay(booking, token="tok_async_ok")
    assert refused.value.code == "hold_expired"


@pytest.mark.django_db
def test_a_charge_for_another_amount_is_refunded_not_confirmed():
    booking = held_booking()
    pay(booking, token="tok_async_ok")
    payment = Payment.objects.get(booking=booking)
    wrong = Charge(intent_id=payment.intent_id, status=ChargeStatus.SUCCEEDED, amount=Decimal("1.00"), currency="EUR")
    payment_apply(payment_id=payment.pk, charge=wrong)
    assert fresh(booking).status == "held"
    assert Payment.objects.get(pk=payment.pk).refund_status == "pending"


# ---- refunds ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_cancelling_a_paid_booking_before_the_cutoff_refunds_it(settings, django_capture_on_commit_callbacks):
    settings.REFUND_CUTOFF_MINUTES = 60
    booking = held_booking(show=paying_show(starts_at=timezone.now() + timedelta(hours=3)))
    pay(booking)
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = booking_cancel(booking_id=booking.pk, user=booking.user)
    assert cancelled.status == "cancelled"
    payment = Payment.objects.get(booking=booking)
    assert (payment.refund_status, payment.refund_amount) == ("refunded", Decimal("19.00"))
    assert booking_refund(fresh(booking)) == {"amount": Decimal("19.00"), "status": "refunded"}


@pytest.mark.django_db
def test_cancelling_a_paid_booking_after_the_cutoff_is_refused(settings):
    settings.REFUND_CUTOFF_MINUTES = 60
    booking = held_booking(show=paying_show(starts_at=timezone.now() + timedelta(minutes=30)))
    pay(booking)
    with pytest.raises(Conflict) as refused:
        booking_cancel(booking_id=booking.pk, user=booking.user)
    assert refused.value.code == "refund_window_closed"
    assert (fresh(booking).status, Payment.objects.get(booking=booking).refund_status) == ("confirmed", None)
    # An unpaid hold of the same show is cancelled as before.
    other = held_booking(show=booking.show, seats=["C1"])
    assert booking_cancel(booking_id=other.pk, user=other.user).status == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_show_refunds_every_paid_booking(settings):
    settings.REFUND_CUTOFF_MINUTES = 60 * 24 * 365  # a show's cancellation refunds whatever the cutoff
    show = paying_show()
    paid = [held_booking(show=show, seats=[seat]) for seat in ("A1", "A2", "A3")]
    for booking in paid:
        pay(booking)
    unpaid = held_booking(show=show, seats=["B1"])
    show_cancel(show=show)
    # Many refunds go to a worker (payments.refund); the reconciliation job sends any left.
    payments_reconcile(older_than_seconds=0)
    for booking in paid:
        assert fresh(booking).status == "cancelled"
        assert Payment.objects.get(booking=booking).refund_status == "refunded"
    assert fresh(unpaid).status == "cancelled"
    assert FakeCharge.objects.filter(refunded_amount=Decimal("9.50")).count() == 3
    assert BookedSeat.objects.filter(show=show).count() == 0


# ---- reconciliation ---------------------------------------------------------------------


@pytest.mark.django_db
def test_reconciliation_sends_a_charge_a_crash_left_unsent_once(settings):
    booking = held_booking()
    settings.PAYMENT_FAKE_ALLOWED = False  # the provider call fails after the record is written
    with pytest.raises(DependencyUnavailable):
        pay(booking)
    settings.PAYMENT_FAKE_ALLOWED = True
    assert payments_reconcile(older_than_seconds=0) == 1
    assert fresh(booking).status == "confirmed"
    assert FakeCharge.objects.count() == 1
    # The client's retry with its key: the same charge, the confirmed booking.
    assert pay(booking).booking.status == "confirmed"
    assert FakeCharge.objects.count() == 1


@pytest.mark.django_db
def test_reconciliation_settles_a_processing_charge_whose_webhook_was_lost():
    booking = held_booking()
    pay(booking, token="tok_async_ok")
    payment = Payment.objects.get(booking=booking)
    assert payments_reconcile(older_than_seconds=0) == 1
    assert fresh(booking).status == "held"  # still processing at the provider
    settle_now(payment)
    payments_reconcile(older_than_seconds=0)
    assert fresh(booking).status == "confirmed"
    assert payments_reconcile(older_than_seconds=3600) == 0


@pytest.mark.django_db
def test_reconciliation_sends_a_refund_a_crash_left_pending():
    booking = held_booking()
    pay(booking)
    # Cancelled without its on-commit refund (the process died after the commit).
    booking_cancel(booking_id=booking.pk, user=booking.user)
    assert Payment.objects.get(booking=booking).refund_status == "pending"
    assert booking_refund(fresh(booking)) == {"amount": Decimal("19.00"), "status": "pending"}
    payments_reconcile(older_than_seconds=0)
    assert Payment.objects.get(booking=booking).refund_status == "refunded"


# ---- the database's last line -----------------------------------------------------------


@pytest.mark.django_db
def test_postgresql_refuses_a_second_kept_charge_and_a_second_in_flight_one():
    booking = held_booking()
    pay(booking)
    common = {"booking": booking, "provider": "fake", "token": "t", "amount": Decimal("19.00"), "currency": "EUR"}
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(**common, idempotency_key="k2", status="succeeded")
    Payment.objects.create(**common, idempotency_key="k3", status="processing")
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(**common, idempotency_key="k4", status="created")
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(**{**common, "amount": Decimal("-1")}, idempotency_key="k5", status="declined")
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(**common, idempotency_key="k6", status="declined", refund_status="pending")


# ---- races --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_payment_that_commits_first_wins_over_the_expiry():
    booking = held_booking()
    pay(booking, token="tok_async_ok")
    payment = Payment.objects.get(booking=booking)
    settle_now(payment)
    overdue(booking)
    charge = fake.FakeProvider().retrieve(intent_id=payment.intent_id)
    with breakpoint_on("core_booking", "UPDATE", "NEW.status = 'confirmed'") as release:
        applying = Background(lambda: payment_apply(payment_id=payment.pk, charge=charge))
        assert wait_until_waiting(applying, on="advisory")  # it holds the show's row and the booking's
        expiry = Background(lambda: holds_expire_show(show_id=booking.show_id, now=timezone.now()))
        assert wait_until_waiting(expiry) in ROW_LOCK_WAITS
        release()
        assert applying.join().status == "succeeded"
        assert expiry.join() == []
    booking = fresh(booking)
    assert (booking.status, seats_of(booking)) == ("confirmed", ["A1", "A2"])
    assert Payment.objects.get(pk=payment.pk).refund_status is None


@pytest.mark.django_db(transaction=True)
def test_an_expiry_that_commits_first_wins_over_the_payment_which_is_refunded():
    booking = held_booking()
    pay(booking, token="tok_async_ok")
    payment = Payment.objects.get(booking=booking)
    settle_now(payment)
    overdue(booking)
    charge = fake.FakeProvider().retrieve(intent_id=payment.intent_id)
    with breakpoint_on("core_booking", "UPDATE", "NEW.status = 'expired'") as release:
        expiry = Background(lambda: holds_expire_show(show_id=booking.show_id, now=timezone.now()))
        assert wait_until_waiting(expiry, on="advisory")
        applying = Background(lambda: payment_apply(payment_id=payment.pk, charge=charge))
        assert wait_until_waiting(applying) in ROW_LOCK_WAITS
        release()
        assert [b.pk for b in expiry.join()] == [booking.pk]
        applying.join()
    booking = fresh(booking)
    assert (booking.status, seats_of(booking)) == ("expired", [])
    # Refunded after the commit, through the provider.
    payment = Payment.objects.get(pk=payment.pk)
    assert (payment.status, payment.refund_status) == ("succeeded", "refunded")


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_key_make_one_charge():
    booking = held_booking()
    barrier = threading.Barrier(6)
    outcomes: list = []

    def retry():
        barrier.wait(timeout=10)
        try:
            outcomes.append(pay(booking).booking.status)
        except Exception as exc:  # noqa: BLE001 - reported below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes == ["confirmed"] * 6
    assert Payment.objects.filter(booking=booking).count() == 1
    assert FakeCharge.objects.count() == 1


# ---- partner webhooks ---------------------------------------------------------------------


@pytest.mark.django_db
def test_partners_hear_a_paid_hold_confirmed_and_a_late_or_cancelled_charge_refunded():
    WebhookEndpoint.objects.create(name="partner", url="http://127.0.0.1:9/x", secret="partner-key")
    paid = held_booking()
    pay(paid)
    late = held_booking(show=paid.show, seats=["C1"])
    pay(late, token="tok_async_ok")
    overdue(late)
    holds_expire_show(show_id=late.show_id, now=timezone.now())
    payload, headers = webhook_for(Payment.objects.get(booking=late))
    payment_webhook_receive(payload=payload, headers=headers)
    booking_cancel(booking_id=paid.pk, user=paid.user)

    def events(booking):
        return list(
            WebhookDelivery.objects.filter(booking_id=booking.pk).order_by("id").values_list("event", flat=True)
        )

    assert events(paid) == ["booking.confirmed", "booking.cancelled", "booking.refunded"]
    assert events(late) == ["booking.expired", "booking.refunded"]
