"""Partner webhooks: the outbox written with each booking transition, and delivery to a real
HTTP receiver started by the test (tests/webhook_receiver.py): signed, retried, in order per
booking, paused when an endpoint keeps failing."""

import hashlib
import hmac
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import Booking, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from core.redis import redis_client
from core.services import partner_events
from core.services.cancellation import booking_cancel, bookings_expire_started
from core.services.catalogue import show_cancel
from core.services.decisions import booking_decide_batch, booking_record_failed_attempt
from core.services.holds import holds_expire_due
from core.services.submission import booking_submit
from tests.factories import ShowFactory, UserFactory
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

FAST = {
    "PARTNER_WEBHOOK_RETRY_BASE_SECONDS": 0.01,
    "PARTNER_WEBHOOK_RETRY_MAX_SECONDS": 0.05,
    "PARTNER_WEBHOOK_TIMEOUT_SECONDS": 2.0,
}


@pytest.fixture
def fast_retries(settings):
    for name, value in FAST.items():
        setattr(settings, name, value)
    return settings


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def endpoint(receiver):
    return WebhookEndpoint.objects.create(name="partner", url=receiver.url, secret="s3cret-partner-key")


def submit(user, show, **kwargs) -> Booking:
    booking, created = booking_submit(user_id=user.pk, show_id=show.pk, **kwargs)
    assert created
    return booking


def decide_all(show) -> None:
    while booking_decide_batch(show_id=show.pk):
        pass


def deliver_until_quiet(*, rounds: int = 200) -> None:
    """What the workers do, in this process: deliver whatever is due until nothing is pending
    but paused or given up (bounded)."""
    for _ in range(rounds):
        due = partner_events.webhook_deliveries_due()
        for delivery_id in due:
            partner_events.webhook_deliver(delivery_id=delivery_id)
        if not WebhookDelivery.objects.filter(status="pending", endpoint__paused_at__isnull=True).exists():
            return
        time.sleep(0.02)
    raise AssertionError("deliveries still pending")


def verify(received, secret: str) -> None:
    """What a partner does (README "Partner webhooks")."""
    parts = dict(item.split("=", 1) for item in received.headers["X-Booking-Signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"])
    assert abs(time.time() - int(parts["t"])) < 300


# ---- recording: the outbox written in the transaction of the change -----------------------


def test_a_decision_records_confirmed_and_failed_events_with_the_booking(endpoint, show):
    alice, bob = UserFactory(), UserFactory()
    won = submit(alice, show, seats=["A1", "A2"])
    lost = submit(bob, show, seats=["A2"])
    decide_all(show)
    events = {d.booking_id: d for d in WebhookDelivery.objects.all()}
    assert {(b, d.event) for b, d in events.items()} == {(won.pk, "booking.confirmed"), (lost.pk, "booking.failed")}
    confirmed = events[won.pk].payload
    assert confirmed["type"] == "booking.confirmed"
    assert confirmed["id"] == str(events[won.pk].event_id)
    booking = confirmed["data"]["booking"]
    won.refresh_from_db()
    assert booking["id"] == str(won.pk)
    assert booking["status"] == "confirmed"
    assert booking["seats"] == ["A1", "A2"]
    assert booking["total"] == str(won.total) == "25.00"
    assert booking["reference"] == won.reference
    assert booking["show"] == show.pk
    assert events[lost.pk].payload["data"]["booking"]["failure_reason"] == "seats_unavailable"


def test_every_active_endpoint_gets_each_event_under_one_event_id(endpoint, show, user):
    WebhookEndpoint.objects.create(name="second", url="http://127.0.0.1:9/x", secret="k")
    WebhookEndpoint.objects.create(name="off", url="http://127.0.0.1:9/y", secret="k", is_active=False)
    submit(user, show, quantity=1)
    decide_all(show)
    deliveries = list(WebhookDelivery.objects.all())
    assert len(deliveries) == 2
    assert len({d.event_id for d in deliveries}) == 1
    assert {d.endpoint.name for d in deliveries} == {"partner", "second"}


def test_without_an_active_endpoint_the_decider_issues_no_extra_query(show, django_capture_on_commit_callbacks):
    """The outbox rides in the decision's own UPDATE: with no endpoint (or only inactive
    ones) a batch issues exactly the statements it issues with one, writes no event, and
    queues no dispatch."""

    def statements_of_a_batch(index: int) -> list[str]:
        for n in range(3):
            submit(UserFactory(), show, seats=[f"{'ABC'[index]}{n + 1}"])
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
            assert len(booking_decide_batch(show_id=show.pk)) == 3
        return [q["sql"] for q in queries.captured_queries]

    WebhookEndpoint.objects.create(name="off", url="http://127.0.0.1:9/y", secret="k", is_active=False)
    redis_client().delete(partner_events.DISPATCH_MARKER)
    without = statements_of_a_batch(0)
    assert not WebhookDelivery.objects.exists()
    assert not redis_client().exists(partner_events.DISPATCH_MARKER)
    assert not any("webhook" in sql.split("WITH upd AS")[0].lower() for sql in without)

    WebhookEndpoint.objects.create(name="on", url="http://127.0.0.1:9/z", secret="k")
    with_endpoint = statements_of_a_batch(1)
    assert len(without) == len(with_endpoint)
    assert WebhookDelivery.objects.count() == 3
    redis_client().delete(partner_events.DISPATCH_MARKER)


def test_a_user_cancel_records_cancelled_after_confirmed(endpoint, show, user):
    booking = submit(user, show, quantity=2)
    decide_all(show)
    booking_cancel(booking_id=booking.pk, user=user)
    events = list(WebhookDelivery.objects.order_by("id").values_list("event", "payload__data__booking__status"))
    assert events == [("booking.confirmed", "confirmed"), ("booking.cancelled", "cancelled")]


def test_a_rolled_back_change_leaves_no_event(endpoint, show, user):
    booking = submit(user, show, quantity=1)
    decide_all(show)

    def cancel_then_fail():
        with transaction.atomic():
            booking_cancel(booking_id=booking.pk, user=user)
            raise RuntimeError("the request fails after the cancel")

    with pytest.raises(RuntimeError):
        cancel_then_fail()
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == ["booking.confirmed"]


def test_a_show_cancellation_records_failed_and_cancelled_events(endpoint, show):
    confirmed = submit(UserFactory(), show, quantity=1)
    decide_all(show)
    pending = submit(UserFactory(), show, quantity=1)
    show_cancel(show=show)
    events = set(WebhookDelivery.objects.values_list("booking_id", "event", "payload__data__booking__status"))
    assert events == {
        (confirmed.pk, "booking.confirmed", "confirmed"),
        (confirmed.pk, "booking.cancelled", "cancelled"),
        (pending.pk, "booking.failed", "failed"),
    }


def test_pending_bookings_of_a_started_show_record_failed(endpoint, user):
    show = ShowFactory()
    booking = submit(user, show, quantity=1)
    other = submit(UserFactory(), ShowFactory(), quantity=1)  # not started: no event
    show.starts_at = timezone.now() - timedelta(minutes=1)
    show.save(update_fields=["starts_at"])
    assert bookings_expire_started() == 1
    assert list(WebhookDelivery.objects.values_list("booking_id", "event")) == [(booking.pk, "booking.failed")]
    assert WebhookDelivery.objects.get().payload["data"]["booking"]["failure_reason"] == "show_started"
    assert not WebhookDelivery.objects.filter(booking_id=other.pk).exists()


def test_a_booking_failed_after_repeated_errors_records_failed(endpoint, show, user, settings):
    settings.BOOKING_MAX_DECIDE_ATTEMPTS = 1
    booking = submit(user, show, quantity=1)
    booking_record_failed_attempt(show_id=show.pk)
    assert list(WebhookDelivery.objects.values_list("booking_id", "event")) == [(booking.pk, "booking.failed")]


def test_events_for_other_callers_are_recorded_for_the_given_bookings(endpoint, show, user):
    """The entry point issue 13's expiry and refunds call."""
    booking = submit(user, show, quantity=1)
    with transaction.atomic():
        assert partner_events.booking_events_record(bookings=[booking.pk], event="booking.expired") == 1
        assert partner_events.booking_events_record(bookings=[], event="booking.refunded") == 0
    with pytest.raises(ValueError, match="unknown partner event"):
        partner_events.booking_events_record(bookings=[booking], event="booking.teleported")


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused(endpoint):
    with pytest.raises(RuntimeError, match="transaction"):
        partner_events.booking_events_record(bookings=[], event="booking.cancelled")


# ---- delivery to a real receiver ---------------------------------------------------------


def test_a_delivery_is_signed_over_timestamp_and_body(endpoint, receiver, show, user, fast_retries):
    booking = submit(user, show, quantity=2)
    decide_all(show)
    deliver_until_quiet()
    (received,) = receiver.delivered()
    verify(received, "s3cret-partner-key")
    assert received.path == "/hooks/booking"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-Booking-Event"] == "booking.confirmed"
    assert received.json["data"]["booking"]["id"] == str(booking.pk)
    assert received.headers["X-Booking-Event-Id"] == received.json["id"]
    with pytest.raises(AssertionError):  # another secret does not verify
        verify(received, "another-secret")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None


def test_failures_are_retried_with_backoff_until_delivered(endpoint, receiver, show, user, fast_retries):
    receiver.fail_first = 3
    submit(user, show, quantity=1)
    decide_all(show)
    delivery = WebhookDelivery.objects.get()
    first = partner_events.webhook_deliver(delivery_id=delivery.pk)
    assert first.attempted
    assert not first.delivered
    assert first.retry_in is not None
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert delivery.next_attempt_at > timezone.now() - timedelta(seconds=1)
    # Not due before its backoff: a second attempt right away is refused by the claim.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=1))
    assert partner_events.webhook_deliver(delivery_id=delivery.pk).attempted is False
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    deliver_until_quiet()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 4)
    assert len(receiver.requests) == 4
    log = list(WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "status_code"))
    assert log == [(1, 500), (2, 500), (3, 500), (4, 200)]
    assert "HTTP 500" in WebhookAttempt.objects.get(delivery=delivery, number=1).error
    # Every attempt carried the same event, signed afresh.
    assert len({r.json["id"] for r in receiver.requests}) == 1
    for received in receiver.requests:
        verify(received, "s3cret-partner-key")


def test_retry_delays_grow_exponentially_with_jitter(settings):
    settings.PARTNER_WEBHOOK_RETRY_BASE_SECONDS = 2
    settings.PARTNER_WEBHOOK_RETRY_MAX_SECONDS = 300
    for attempts, ceiling in [(1, 2), (2, 4), (5, 32), (20, 300)]:
        delays = {partner_events.retry_delay(attempts) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


def test_events_of_a_booking_are_delivered_in_order(endpoint, receiver, fast_retries):
    """Several bookings, each confirmed then cancelled, the receiver failing at first: every
    booking's confirmed arrives (is answered 2xx) before its cancelled is even sent."""
    receiver.fail_first = 4
    show = ShowFactory()
    users = [UserFactory() for _ in range(4)]
    bookings = [submit(u, show, quantity=1) for u in users]
    decide_all(show)
    for booking, user in zip(bookings, users, strict=True):
        booking_cancel(booking_id=booking.pk, user=user)
    assert WebhookDelivery.objects.count() == 8
    # The head of each booking's queue only: the cancelled events wait.
    due = set(
        WebhookDelivery.objects.filter(pk__in=partner_events.webhook_deliveries_due()).values_list("event", flat=True)
    )
    assert due == {"booking.confirmed"}
    deliver_until_quiet()
    for booking in bookings:
        sent = [
            (r.json["type"], r.answered)
            for r in receiver.requests
            if r.json["data"]["booking"]["id"] == str(booking.pk)
        ]
        first_ok = sent.index(("booking.confirmed", 200))
        assert all(kind == "booking.confirmed" for kind, _ in sent[: first_ok + 1]), sent
        assert sent[-1] == ("booking.cancelled", 200), sent
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_given_up_event_lets_the_next_one_go(endpoint, receiver, show, user, fast_retries):
    fast_retries.PARTNER_WEBHOOK_MAX_ATTEMPTS = 2
    fast_retries.PARTNER_WEBHOOK_PAUSE_AFTER_FAILURES = 100
    receiver.fail_first = 2
    booking = submit(user, show, quantity=1)
    decide_all(show)
    booking_cancel(booking_id=booking.pk, user=user)
    deliver_until_quiet()
    assert list(WebhookDelivery.objects.order_by("id").values_list("event", "status", "attempts")) == [
        ("booking.confirmed", "given_up", 2),
        ("booking.cancelled", "delivered", 1),
    ]


def test_an_endpoint_that_keeps_failing_is_paused_then_resumed(endpoint, receiver, show, fast_retries):
    fast_retries.PARTNER_WEBHOOK_PAUSE_AFTER_FAILURES = 3
    receiver.always_fail = True
    for n in range(2):
        submit(UserFactory(), show, seats=[f"A{n + 1}"])
    decide_all(show)
    deliver_until_quiet()
    endpoint.refresh_from_db()
    assert endpoint.paused_at is not None
    assert endpoint.consecutive_failures == 3
    assert "3 times" in endpoint.pause_reason
    assert len(receiver.requests) == 3  # not retried for ever
    assert partner_events.webhook_deliveries_due() == []
    # Events keep being recorded while it is paused, and go out once it is resumed.
    submit(UserFactory(), show, seats=["B1"])
    decide_all(show)
    assert WebhookDelivery.objects.filter(status="pending").count() == 3
    receiver.always_fail = False
    partner_events.webhook_endpoint_resume(endpoint=endpoint)
    deliver_until_quiet()
    endpoint.refresh_from_db()
    assert (endpoint.paused_at, endpoint.consecutive_failures, endpoint.failing_since) == (None, 0, None)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert len(receiver.delivered()) == 3


def test_an_endpoint_failing_for_too_long_is_paused(endpoint, receiver, show, user, fast_retries):
    fast_retries.PARTNER_WEBHOOK_PAUSE_AFTER_FAILURES = 1000
    fast_retries.PARTNER_WEBHOOK_PAUSE_AFTER_SECONDS = 60
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=2, failing_since=timezone.now() - timedelta(minutes=2)
    )
    receiver.always_fail = True
    submit(user, show, quantity=1)
    decide_all(show)
    partner_events.webhook_deliver(delivery_id=WebhookDelivery.objects.get().pk)
    endpoint.refresh_from_db()
    assert endpoint.paused_at is not None


def test_a_success_resets_the_failure_count(endpoint, receiver, show, user, fast_retries):
    receiver.fail_first = 2
    submit(user, show, quantity=1)
    decide_all(show)
    deliver_until_quiet()
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.failing_since, endpoint.paused_at) == (0, None, None)


def test_redirects_are_not_followed(endpoint, receiver, show, user, fast_retries):
    fast_retries.PARTNER_WEBHOOK_MAX_ATTEMPTS = 1
    target = Receiver().start()
    try:
        receiver.redirect_to = target.url
        submit(user, show, quantity=1)
        decide_all(show)
        deliver_until_quiet()
        assert target.requests == []
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.last_status_code) == ("given_up", 302)
    finally:
        target.stop()


def test_an_unreachable_endpoint_is_a_failed_attempt_with_its_error(show, user, fast_retries):
    fast_retries.PARTNER_WEBHOOK_MAX_ATTEMPTS = 1
    WebhookEndpoint.objects.create(name="gone", url="http://127.0.0.1:9/nothing-listens", secret="k")
    submit(user, show, quantity=1)
    decide_all(show)
    deliver_until_quiet()
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert "ConnectError" in attempt.error


def test_only_http_and_https_urls_are_accepted(show, user, fast_retries):
    endpoint = WebhookEndpoint(name="file", url="file:///etc/passwd", secret="k")
    with pytest.raises(ValidationError):
        endpoint.full_clean()
    # Written around the validation (a raw save): still refused when sending.
    fast_retries.PARTNER_WEBHOOK_MAX_ATTEMPTS = 1
    WebhookEndpoint.objects.create(name="ftp", url="ftp://127.0.0.1/x", secret="k")
    submit(user, show, quantity=1)
    decide_all(show)
    deliver_until_quiet()
    assert "only http and https" in WebhookAttempt.objects.get().error


def test_two_claims_of_one_delivery_let_one_attempt_through(endpoint, receiver, show, user, fast_retries):
    submit(user, show, quantity=1)
    decide_all(show)
    delivery = WebhookDelivery.objects.get()
    assert partner_events._claim(delivery.pk) is not None
    assert partner_events._claim(delivery.pk) is None  # leased by the first


def test_a_dispatch_queues_due_deliveries_after_commit(endpoint, show, user, django_capture_on_commit_callbacks):
    redis_client().delete(partner_events.DISPATCH_MARKER)
    submit(user, show, quantity=1)
    with django_capture_on_commit_callbacks() as callbacks:
        decide_all(show)
    assert partner_events.dispatch_soon in callbacks


# ---- through the real processes ----------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_booking_confirmed_by_the_real_worker_is_delivered_signed(live_stack, receiver):
    """gunicorn accepts, the Celery worker decides and records the event in its decision,
    queues the dispatch on commit, and a worker delivers it to the receiver, signed."""
    WebhookEndpoint.objects.create(name="e2e partner", url=receiver.url, secret="e2e-secret-key")
    show = ShowFactory()
    user = UserFactory()
    with live_stack.client(user) as client:
        accepted = client.post("/api/v1/bookings", json={"show": show.pk, "quantity": 2})
        assert accepted.status_code == 202, accepted.text
        booking_id = accepted.json()["id"]
        (received,) = receiver.wait_for(1, timeout=60)
        verify(received, "e2e-secret-key")
        assert received.json["type"] == "booking.confirmed"
        booking = received.json["data"]["booking"]
        assert (booking["id"], booking["status"], len(booking["seats"])) == (booking_id, "confirmed", 2)
        cancelled = client.delete(f"/api/v1/bookings/{booking_id}")
        assert cancelled.status_code == 200, cancelled.text
        second = receiver.wait_for(2, timeout=60)[1]
        verify(second, "e2e-secret-key")
        assert second.json["type"] == "booking.cancelled"
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_held_booking_records_no_event_until_it_expires(endpoint):
    show = ShowFactory(payment_required=True)
    booking = submit(UserFactory(), show, quantity=1)
    decide_all(show)
    booking.refresh_from_db()
    assert booking.status == "held"
    assert not WebhookDelivery.objects.exists()
    holds_expire_due(now=booking.hold_expires_at + timedelta(seconds=1))
    delivery = WebhookDelivery.objects.get()
    assert (delivery.booking_id, delivery.event) == (booking.pk, "booking.expired")
    assert delivery.payload["data"]["booking"]["status"] == "expired"
