"""The harness's invariants checker (tests/harness/invariants.py) names each broken guarantee:
a correct show passes, then each corruption of it is reported. The race test, the fault
tests and the benchmark rely on this one checker."""

import pytest
from django.db import connection

from core.models import Payment
from core.payments import provider
from core.services.decisions import booking_decide_batch
from core.services.holds import holds_expire_show
from core.services.payments import booking_pay, payment_apply, payment_refund_send
from core.services.submission import booking_submit
from tests.factories import ShowFactory, UserFactory
from tests.harness.invariants import check_guarantees, execute, payment_violations, show_violations
from tests.test_services_payments import held_booking, overdue

pytestmark = pytest.mark.django_db


@pytest.fixture
def decided():
    """A 1x4 show: A1-A2 confirmed, A1 refused, 2 best seats confirmed, 1 more sold out."""
    show = ShowFactory(screen__rows=1, screen__seats_per_row=4)
    asked = [{"seats": ["A1", "A2"]}, {"seats": ["A1"]}, {"quantity": 2}, {"quantity": 1}]
    requests = {}
    for body in asked:
        booking = booking_submit(user_id=UserFactory().pk, show_id=show.pk, **body)[0]
        requests[str(booking.pk)] = {"show": show.pk, **body}
    booking_decide_batch(show_id=show.pk)
    return show, requests


def violations(show, requests, **kwargs) -> list[str]:
    return show_violations(connection, show.pk, requests=requests, **kwargs)[0]


def test_a_correct_show_has_no_violations(decided):
    show, requests = decided
    found, facts = show_violations(connection, show.pk, requests=requests)
    assert found == []
    assert (facts["confirmed"], facts["failed"], facts["held"], facts["sold_out"]) == (2, 2, 4, True)
    assert check_guarantees(connection, requests) == {"confirmed": 2, "failed": 2}


@pytest.mark.parametrize(
    ("corruption", "named"),
    [
        ("UPDATE core_booking SET status = 'pending', decided_at = NULL WHERE quantity = 1", "never decided"),
        ("DELETE FROM core_bookedseat WHERE seat_label = 'A1'", "differ from held seats"),
        ("UPDATE core_booking SET seats = '{A3}' WHERE seats = '{A1,A2}'", "confirmed to two bookings"),
        ("UPDATE core_booking SET failure_reason = 'show_started' WHERE failure_reason = 'sold_out'", "unexpected"),
        ("DELETE FROM core_bookedseat WHERE seat_label IN ('A3', 'A4')", "while 2 are still free"),
        ("UPDATE core_booking SET decided_at = decided_at - interval '1 hour' WHERE quantity = 1", "decision order"),
        ("UPDATE core_booking SET total = total + 1 WHERE status = 'confirmed'", "reference, lines or total"),
        ("UPDATE core_bookingline SET amount = amount + 1", "line at"),
        (
            "UPDATE core_bookingline SET admitted_at = now();"
            " UPDATE core_booking SET status = 'cancelled' WHERE seats = '{A1,A2}'",
            "yet its ticket A1 was admitted",
        ),
    ],
)
def test_each_broken_guarantee_is_named(decided, corruption, named):
    show, requests = decided
    execute(connection, corruption)
    found = violations(show, requests)
    assert any(named in violation for violation in found), found
    with pytest.raises(AssertionError, match=named):
        check_guarantees(connection, requests)


def test_a_booking_no_client_asked_for_or_a_lost_one_is_named(decided):
    show, requests = decided
    lost = next(iter(requests))
    assert any("lost" in v for v in violations(show, {**requests, "00000000-0000-0000-0000-000000000000": {}}))
    assert any(
        "no client was told about" in v for v in violations(show, {k: requests[k] for k in requests if k != lost})
    )


def test_what_a_client_polled_must_be_what_the_database_holds(decided):
    show, requests = decided
    finals = {pk: {"status": "confirmed", "seats": []} for pk in requests}
    assert any("polled confirmed, the database says failed" in v for v in violations(show, requests, finals=finals))
    assert any("never saw a final state" in v for v in violations(show, requests, finals={}))


def test_first_accepted_first_decided(decided):
    show, requests = decided
    *_, last = requests  # submitted, and so decided, last
    in_order = {pk: (i, i + 0.5) for i, pk in enumerate(requests)}
    assert violations(show, requests, timings=in_order) == []
    # The last booking's 202 arrived before the first was even submitted: yet decided after it.
    inverted = {**in_order, last: (-2.0, -1.0)}
    assert any("order:" in v for v in violations(show, requests, timings=inverted))


# ---- payments (harness/invariants.payment_violations) -------------------------------------


@pytest.fixture
def paid():
    """A paying show's booking paid with tok_ok (confirmed, one kept charge) and another
    whose late charge was refunded after its hold expired."""
    confirmed = held_booking()
    booking_pay(booking_id=confirmed.pk, user=confirmed.user, token="tok_ok", idempotency_key="k")
    late = held_booking(show=confirmed.show, seats=["C1"])
    booking_pay(booking_id=late.pk, user=late.user, token="tok_async_ok", idempotency_key="k")
    execute(connection, "UPDATE core_fakecharge SET settles_at = now() - interval '1 second'")
    overdue(late)
    holds_expire_show(show_id=late.show_id, now=late.hold_expires_at)
    payment = Payment.objects.get(booking=late)
    payment_apply(payment_id=payment.pk, charge=provider().retrieve(intent_id=payment.intent_id))
    payment_refund_send(payment_id=payment.pk)
    return confirmed, late


def test_correct_payments_have_no_violations(paid):
    assert payment_violations(connection) == []


@pytest.mark.parametrize(
    ("corruption", "named"),
    [
        # A success on an expired booking, never refunded: money kept without seats.
        (
            "UPDATE core_payment SET refund_status = NULL, refund_amount = NULL WHERE refund_status IS NOT NULL",
            "succeeded, booking expired, refund None",
        ),
        # A provider charge no payment knows of: an effect not recorded.
        ("UPDATE core_payment SET intent_id = 'pi_other' WHERE refund_status IS NULL", "provider charge"),
        # A confirmed booking of a paying show without its charge.
        ("DELETE FROM core_payment WHERE refund_status IS NULL", "0 kept charges"),
        # The provider refunded what the payment says it did not.
        ("UPDATE core_fakecharge SET refunded_amount = 1 WHERE refund_id IS NULL", "the provider says"),
        # A held booking long past its deadline.
        (
            "UPDATE core_booking SET status = 'held', hold_expires_at = now() - interval '1 minute'"
            " WHERE status = 'expired'",
            "still held long past its deadline",
        ),
    ],
    ids=["kept-without-seats", "unknown-charge", "confirmed-unpaid", "ledger-disagrees", "held-past-deadline"],
)
def test_each_broken_payment_guarantee_is_named(paid, corruption, named):
    execute(connection, corruption)
    found = payment_violations(connection)
    assert any(named in violation for violation in found), found
