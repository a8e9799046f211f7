"""Payment through the real processes: gunicorn, Celery workers and beat.

- tok_async_ok answers 202 and its result really arrives through HTTP: a worker POSTs the fake
  provider's signed event to the web process's webhook, which confirms the booking.
- A concurrent black box: many clients pay held bookings (synchronous and asynchronous
  tokens, retries with the same key, two keys at once) while their holds expire under beat's
  expiry job; then, in SQL, each charge had one effect, every succeeded charge ended as a
  confirmed booking or a refund, only live bookings hold seats, and what each client was
  told agrees with what PostgreSQL holds.
"""

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.models import Booking, Payment, PaymentEvent
from tests.factories import ShowFactory, UserFactory
from tests.harness import invariants
from tests.harness.procs import wait_until
from tests.harness.service import start_beat

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def beat(live_stack):
    """celery beat with short intervals: holds expire and payments reconcile within seconds."""
    proc = start_beat(
        live_stack.log_dir,
        BOOKING_HOLD_SWEEP_SECONDS="0.3",
        PAYMENT_RECONCILE_INTERVAL_SECONDS="1",
        PAYMENT_RECONCILE_AFTER_SECONDS="3",
    )
    yield proc
    proc.stop()


def poll_until_decided(client, booking_id: str, *, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        booking = client.get(f"/api/v1/bookings/{booking_id}").json()
        if booking["status"] != "pending":
            return booking
        time.sleep(0.1)
    raise AssertionError(f"booking {booking_id} still pending after {timeout}s")


def post_retrying(client, path: str, *, json: dict, headers: dict | None = None, within: float = 30):
    """POST, retried after Retry-After while the service sheds load (503), as the contract
    asks a client to (with the same Idempotency-Key)."""
    deadline = time.monotonic() + within
    while True:
        response = client.post(path, json=json, headers=headers or {})
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(float(response.headers.get("Retry-After", 1)) * random.random())


def paying_show(rows: int = 4, per_row: int = 10):
    return ShowFactory(payment_required=True, screen__rows=rows, screen__seats_per_row=per_row)


def test_an_async_payment_arrives_through_the_webhook_over_http(live_stack, beat):
    show, user = paying_show(), UserFactory()
    with live_stack.client(user) as client:
        submitted = client.post("/api/v1/bookings", json={"show": show.pk, "quantity": 2})
        assert submitted.status_code == 202
        held = poll_until_decided(client, submitted.json()["id"])
        assert held["status"] == "held", held
        assert held["hold_expires_at"]
        assert held["total"] == f"{2 * show.price:.2f}"
        paid = client.post(
            f"/api/v1/bookings/{held['id']}/pay",
            json={"payment_token": "tok_async_ok"},
            headers={"Idempotency-Key": "k"},
        )
        assert paid.status_code == 202, paid.text
        assert paid.json()["status"] == "held"

        def confirmed():
            return client.get(f"/api/v1/bookings/{held['id']}").json()["status"] == "confirmed"

        wait_until(confirmed, timeout=20, what="the webhook to confirm the booking", interval=0.2)
        again = client.post(
            f"/api/v1/bookings/{held['id']}/pay",
            json={"payment_token": "tok_async_ok"},
            headers={"Idempotency-Key": "k"},
        )
        assert (again.status_code, again.json()["status"]) == (200, "confirmed")
        cancelled = client.delete(f"/api/v1/bookings/{held['id']}")
        assert cancelled.status_code == 200
        assert cancelled.json()["refund"] == {"amount": held["total"], "status": "refunded"}
    payment = Payment.objects.get(booking_id=held["id"])
    # It came through the webhook (the event is recorded), not from the reconciliation job.
    assert PaymentEvent.objects.filter(event_id=f"evt_{payment.intent_id}_succeeded").exists()
    assert invariants.payment_violations(connection) == []


BOOKINGS = 60
TOKENS = ["tok_ok"] * 4 + ["tok_async_ok"] * 3 + ["tok_declined", "tok_async_fail"]
# Seconds over which the payments arrive and the deadlines fall: wide enough that a loaded
# machine still answers some payments before their deadline.
WINDOW = 4.0


def test_payments_racing_hold_expiry_are_decided_once(live_stack, beat):
    """Holds expire (their deadlines spread over the seconds the payments arrive in) while
    clients pay them; each booking ends confirmed with one kept charge, or expired with any
    charge refunded."""
    shows = [paying_show() for _ in range(3)]
    users = UserFactory.create_batch(BOOKINGS)
    rng = random.Random(20261202)
    told: dict[str, list[tuple[int, str]]] = {}
    lock = threading.Lock()

    def hold(index: int) -> str:
        with live_stack.client(users[index]) as client:
            body = {"show": shows[index % 3].pk, "quantity": 1 + index % 2}
            response = post_retrying(client, "/api/v1/bookings", json=body, headers={"Idempotency-Key": f"b{index}"})
            assert response.status_code == 202, response.text
            return poll_until_decided(client, response.json()["id"])["id"]

    with ThreadPoolExecutor(16) as pool:
        booking_ids = list(pool.map(hold, range(BOOKINGS)))
    assert Booking.objects.filter(pk__in=booking_ids, status="held").count() == BOOKINGS
    # The deadlines: spread over the next WINDOW seconds, so that the expiry job and the payments
    # meet. Every fourth booking pays asynchronously just before its deadline: its charge
    # succeeds (by webhook, a second later) after the hold expired, and must be refunded.
    plans = []
    for i, booking_id in enumerate(booking_ids):
        if i % 4 == 0:
            at = rng.uniform(0, WINDOW * 0.6)
            plans.append((i, booking_id, "tok_async_ok", at, at + 0.8))
        else:
            plans.append((i, booking_id, rng.choice(TOKENS), rng.uniform(0, WINDOW), rng.uniform(0.3, WINDOW)))
    now, started = timezone.now(), time.monotonic()
    for _, booking_id, _, _, deadline in plans:
        Booking.objects.filter(pk=booking_id).update(hold_expires_at=now + timedelta(seconds=deadline))

    def pay(plan) -> None:
        index, booking_id, token, at, _ = plan
        time.sleep(max(0.0, started + at - time.monotonic()))
        key = uuid.uuid4().hex
        with live_stack.client(users[index]) as client:
            # The same key sent twice at once (a retry racing its original), and sometimes
            # a second key too: still one charge kept.
            keys = [key, key] + ([uuid.uuid4().hex] if index % 5 == 0 else [])
            with ThreadPoolExecutor(len(keys)) as inner:
                answers = list(
                    inner.map(
                        lambda k: post_retrying(
                            client,
                            f"/api/v1/bookings/{booking_id}/pay",
                            json={"payment_token": token},
                            headers={"Idempotency-Key": k},
                        ),
                        keys,
                    )
                )
        for answer in answers:
            assert answer.status_code in (200, 202, 402, 409), answer.text
            code = answer.json().get("code", answer.json().get("status"))
            with lock:
                told.setdefault(booking_id, []).append((answer.status_code, code))

    with ThreadPoolExecutor(24) as pool:
        list(pool.map(pay, plans))

    # Every hold's deadline has passed: each booking ends confirmed or expired, every
    # charge settled (webhooks, the reconciliation job) and every refund done.
    wait_until(
        lambda: (
            invariants.payments_settled(connection)
            and not Booking.objects.filter(pk__in=booking_ids, status="held").exists()
        ),
        timeout=60,
        interval=0.5,
        what="payments settled and holds expired",
    )
    statuses = dict(Booking.objects.filter(pk__in=booking_ids).values_list("id", "status"))
    assert set(statuses.values()) <= {"confirmed", "expired"}
    assert invariants.payment_violations(connection) == []
    for show in shows:
        violations, _ = invariants.show_violations(connection, show.pk)
        assert violations == []
    for booking_id, answers in told.items():
        final = statuses[uuid.UUID(booking_id)]
        if any(status == 200 for status, _ in answers):
            assert final == "confirmed", (booking_id, answers)
        if (409, "hold_expired") in answers and (200, "confirmed") not in answers:
            assert final == "expired" or any(status == 202 for status, _ in answers), (booking_id, answers)
    outcomes = {status for answers in told.values() for status, _ in answers}
    # The race really happened: some paid in time, some were too late.
    assert {200, 409} <= outcomes, told
    assert "confirmed" in statuses.values()
    assert "expired" in statuses.values()
    # ... and charges that succeeded after their hold expired were refunded.
    assert Payment.objects.filter(booking_id__in=booking_ids, refund_status="refunded").exists()
