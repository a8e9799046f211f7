"""The drain: one drain serves every ready show of its queue in turn, one batch per show per
turn, each show's bookings in acceptance order; a drain that runs out of bookings waits
briefly for the next one of its last show, unless another show is ready or another queue's
wake-up waits; a show fed without pause lets the others through; a drain at its deadline
hands its queue off, and a hand-off the broker refuses is tried again, then left to the
marker's lapse (real Redis broker, real PostgreSQL)."""

import threading
import time

import pytest
from django.db import connection
from django.test import override_settings

from core import decision_queue as dispatch
from core.decision_queue import wake_key, wakeups_queued
from core.models import Booking
from core.redis import redis_client
from core.services import drain
from core.services.submission import booking_submit
from core.show_lock import show_lock
from tests.factories import ShowFactory, UserFactory
from tests.harness import procs, service
from tests.harness.servers import PrivateRedis
from tests.harness.service import broker_at
from workers import tasks
from workers.tasks import decide_show

pytestmark = pytest.mark.django_db

PRIVATE_QUEUE = "bookings-linger-test"


OTHER_QUEUE = "bookings-linger-test-other"


@pytest.fixture
def private_queue(monkeypatch):
    """Point the drain at a queue of its own (and a second one, as if shows were sharded),
    so that no worker of the e2e tests consumes what these tests queue (the broker is the
    real Redis)."""
    from booking_api.config.celery import app

    monkeypatch.setattr(dispatch, "bookings_queues", lambda: [PRIVATE_QUEUE, OTHER_QUEUE])
    monkeypatch.setattr(dispatch, "bookings_queue", lambda show_id: PRIVATE_QUEUE)
    yield PRIVATE_QUEUE
    with app.connection_for_write() as conn:
        for queue in (PRIVATE_QUEUE, OTHER_QUEUE):
            conn.default_channel.queue_purge(queue)


def test_wakeups_queued_counts_the_bookings_queues(private_queue):
    assert not wakeups_queued()
    decide_show.apply_async(args=[123456], queue=OTHER_QUEUE)
    assert wakeups_queued()
    assert not wakeups_queued(excluding=OTHER_QUEUE)


@override_settings(BOOKING_DRAIN_LINGER_MS=200)
def test_a_drain_lingers_and_sees_a_booking_of_its_show(private_queue):
    show = ShowFactory()
    booking_submit(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    assert drain._more_soon(show_id=show.pk, queue=private_queue)


@override_settings(BOOKING_DRAIN_LINGER_MS=200)
def test_a_drain_lets_go_after_the_linger_when_nothing_comes(private_queue):
    show = ShowFactory()
    started = time.monotonic()
    assert not drain._more_soon(show_id=show.pk, queue=private_queue)
    assert time.monotonic() - started >= 0.2


@override_settings(BOOKING_DRAIN_LINGER_MS=5000)
def test_a_drain_does_not_linger_while_another_show_is_ready(private_queue):
    show, other = ShowFactory(), ShowFactory()
    assert dispatch.wake_show(show_id=other.pk)
    started = time.monotonic()
    assert not drain._more_soon(show_id=show.pk, queue=private_queue)
    assert time.monotonic() - started < 5


@override_settings(BOOKING_DRAIN_LINGER_MS=5000)
def test_a_drain_does_not_linger_while_another_queue_has_a_wake_up(private_queue):
    show = ShowFactory()
    decide_show.apply_async(args=[show.pk + 1], queue=OTHER_QUEUE)
    started = time.monotonic()
    assert not drain._more_soon(show_id=show.pk, queue=private_queue)
    assert time.monotonic() - started < 5


@override_settings(BOOKING_DRAIN_LINGER_MS=10000)
def test_a_lingering_drain_lets_go_when_another_show_becomes_ready(private_queue):
    show, other = ShowFactory(), ShowFactory()
    waker = threading.Timer(0.2, lambda: dispatch.wake_show(show_id=other.pk))
    waker.start()
    started = time.monotonic()
    try:
        assert not drain._more_soon(show_id=show.pk, queue=private_queue)
    finally:
        waker.join(timeout=10)
    assert time.monotonic() - started < 10


@override_settings(BOOKING_DRAIN_LINGER_MS=0)
def test_linger_can_be_switched_off(private_queue):
    show = ShowFactory()
    booking_submit(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    assert not drain._more_soon(show_id=show.pk, queue=private_queue)


# ---- one drain, many shows: round robin over the ready set -----------------------------------


def _accepted(show, count: int, user=None) -> list[Booking]:
    """Pending bookings of the show, accepted and woken as the API does it."""
    user = user or UserFactory()
    bookings = [Booking.objects.create(user=user, show=show, quantity=1) for _ in range(count)]
    dispatch.wake_show(show_id=show.pk)
    return bookings


def _decision_order(shows) -> list[tuple[int, int]]:
    """(show, sequence) of the shows' bookings in the order they were decided."""
    decided = Booking.objects.filter(show__in=shows, decided_at__isnull=False).order_by("decided_at", "sequence")
    return list(decided.values_list("show_id", "sequence"))


@override_settings(BOOKING_DRAIN_LINGER_MS=0, BOOKING_DECIDE_BATCH=2)
def test_one_drain_decides_every_ready_show_each_in_acceptance_order(private_queue):
    shows = [ShowFactory() for _ in range(5)]
    for n, show in enumerate(shows):
        _accepted(show, n + 1)
    # The wake-up of the first show is enough: the drain serves every ready show of its queue.
    assert decide_show(shows[0].pk) == 15
    assert not Booking.objects.filter(show__in=shows, status="pending").exists()
    order = _decision_order(shows)
    for show in shows:
        sequences = [sequence for show_id, sequence in order if show_id == show.pk]
        assert sequences == sorted(sequences)
    # Every show left the ready set, and its marker was cleared: its next booking wakes it.
    assert drain_ready(private_queue) == []
    assert not any(redis_client().exists(wake_key(show.pk)) for show in shows)
    assert dispatch.wake_show(show_id=shows[0].pk)


def drain_ready(queue: str) -> list[int]:
    return [int(member) for member in redis_client().zrange(dispatch.ready_key(queue), 0, -1)]


@override_settings(BOOKING_DRAIN_LINGER_MS=0, BOOKING_DECIDE_BATCH=1)
def test_a_show_with_bookings_left_goes_to_the_back_of_the_line(private_queue):
    """The fairness mechanism, without timing: the long show was ready first and has four
    bookings, deciding one per batch; the other shows' bookings are each decided after one
    turn of the long show, not after all of its bookings."""
    long_show, second, third = ShowFactory(), ShowFactory(), ShowFactory()
    _accepted(long_show, 4)
    _accepted(second, 1)
    _accepted(third, 1)
    assert decide_show(long_show.pk) == 6
    order = [show_id for show_id, _ in _decision_order([long_show, second, third])]
    assert order == [long_show.pk, second.pk, third.pk, long_show.pk, long_show.pk, long_show.pk]


@override_settings(BOOKING_DRAIN_LINGER_MS=0)
def test_a_claimed_show_is_hidden_from_other_drains_until_its_lease_lapses(private_queue):
    show = ShowFactory()
    _accepted(show, 1)
    assert dispatch.show_claim_next(queue=private_queue) == (show.pk, False)
    assert dispatch.show_claim_next(queue=private_queue) is None  # a second drain finds nothing
    assert decide_show(show.pk) == 0  # its wake-up too: the claimed show is its drain's
    assert Booking.objects.filter(show=show, status="pending").count() == 1
    # The drain holding the claim died: the show is claimable again once the lease lapses.
    redis_client().zadd(dispatch.ready_key(private_queue), {show.pk: 0})
    assert decide_show(show.pk) == 1


@override_settings(BOOKING_DRAIN_LINGER_MS=0)
def test_a_booking_after_the_marker_was_cleared_leaves_the_show_ready(private_queue):
    """The drain cleared the show's marker and found nothing pending; a booking committed
    then wakes the show while the drain still holds its claim: show_finish leaves the show
    ready instead of taking it out of the ready set."""
    show = ShowFactory()
    dispatch.wake_show(show_id=show.pk)
    assert dispatch.show_claim_next(queue=private_queue) == (show.pk, False)
    dispatch.clear_wake_marker(show_id=show.pk)
    _accepted(show, 1)  # its wake-up marks the show; the show is in the ready set already
    assert dispatch.show_finish(show_id=show.pk) is True
    assert dispatch.show_claim_next(queue=private_queue) == (show.pk, False)
    # Without that booking the show leaves the ready set.
    dispatch.clear_wake_marker(show_id=show.pk)
    assert dispatch.show_finish(show_id=show.pk) is False
    assert drain_ready(private_queue) == []


@override_settings(BOOKING_DRAIN_LINGER_MS=0)
def test_a_ready_show_whose_lock_is_taken_is_left_ready_and_retried(private_queue):
    locked, free = ShowFactory(), ShowFactory()
    _accepted(locked, 1)
    _accepted(free, 1)
    holder = show_lock(locked.pk)
    assert holder.acquire()
    try:
        with pytest.raises(drain.ShowBusy):
            drain.drain_show(show_id=locked.pk)
        # The other show was served meanwhile; the locked one waits, ready, for the retry.
        assert Booking.objects.get(show=free).status != "pending"
        assert Booking.objects.get(show=locked).status == "pending"
        assert drain_ready(private_queue) == [locked.pk]
    finally:
        holder.release()
    assert drain.drain_show(show_id=locked.pk) == 1  # the retry


@override_settings(BOOKING_DRAIN_LINGER_MS=0)
def test_a_wake_up_serves_its_show_when_the_ready_set_lost_it(private_queue):
    """Pending bookings whose show is in no ready set (Redis lost it, or they were written
    without a wake-up): the show's next wake-up message decides them."""
    show = ShowFactory()
    _pending(show, 2)
    assert decide_show(show.pk) == 2


# ---- turns: a show fed without pause does not starve the others ----------------------------


@pytest.fixture
def private_broker(tmp_path):
    """A redis-server of this test's own as the broker, for the worker it starts and for
    this process's publishes: no worker of the other tests takes its wake-ups."""
    server = PrivateRedis(tmp_path).start()
    try:
        with broker_at(server.url()):
            yield server
    finally:
        server.kill()


def _feed(show_id: int, user_id: int, stop: threading.Event) -> None:
    """Pending bookings of the show, faster than a drain deciding one per transaction takes
    them: written straight to PostgreSQL, like bookings whose wake-up found the marker set."""
    try:
        while not stop.is_set():
            Booking.objects.bulk_create(Booking(user_id=user_id, show_id=show_id, quantity=1) for _ in range(25))
            time.sleep(0.025)
    finally:
        connection.close()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_show_fed_without_pause_lets_another_show_through(private_broker, tmp_path):
    """One worker process; one show always has bookings pending (a drain deciding one per
    transaction never catches up), so its drain never runs out of work. A booking of a
    second show is still decided within a few turns (BOOKING_DRAIN_TURN_SECONDS=1), not at
    the drain's deadline (60 s with the default soft time limit)."""
    hot = ShowFactory(screen__rows=26, screen__seats_per_row=200)
    cold = ShowFactory()
    user = UserFactory()
    worker = service.start_worker(
        tmp_path,
        concurrency=1,
        CELERY_BROKER_URL=private_broker.url(),
        BOOKING_DECIDE_BATCH=1,
        BOOKING_DRAIN_TURN_SECONDS=1,
    )
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(hot.pk, user.pk, stop), daemon=True)
    booking_submit(user_id=user.pk, show_id=hot.pk, quantity=1)  # the hot show's wake-up
    feeder.start()
    try:
        hot_decided = Booking.objects.filter(show=hot).exclude(status="pending")
        procs.wait_until(lambda: hot_decided.count() >= 20, timeout=60, what="the hot show's drain", proc=worker)
        booking, _ = booking_submit(user_id=user.pk, show_id=cold.pk, quantity=1)
        submitted = time.monotonic()
        procs.wait_until(
            lambda: Booking.objects.get(pk=booking.pk).status != "pending",
            timeout=15,
            what="the other show's booking to be decided",
            proc=worker,
        )
        waited = time.monotonic() - submitted
        decided_before = hot_decided.count()
        # The hot show goes on being decided after the other show's turn.
        procs.wait_until(
            lambda: hot_decided.count() > decided_before + 20, timeout=30, what="the hot show's next turn", proc=worker
        )
    finally:
        stop.set()
        feeder.join(timeout=10)
        worker.stop()
    assert Booking.objects.get(pk=booking.pk).status == "confirmed"
    assert waited < 15
    assert Booking.objects.filter(show=hot, status="pending").exists()  # it was never caught up with
    # Its turns kept the show's decisions serial and in acceptance order.
    decided = Booking.objects.filter(show=hot, decided_at__isnull=False).order_by("sequence")
    decided = list(decided.values_list("decided_at", flat=True))
    assert decided == sorted(decided)
    assert "could not hand the show off" not in worker.log()


# ---- hand-offs the broker refuses ----------------------------------------------------------

DEAD_BROKER = "redis://127.0.0.1:1/0"  # a closed local port: a real, refused connection


def _queued(server: PrivateRedis) -> int:
    return server.client().llen("bookings")


def _pending(show, count: int) -> None:
    # Written straight to PostgreSQL, as if their wake-up had been lost.
    user = UserFactory()
    for _ in range(count):
        Booking.objects.create(user=user, show=show, quantity=1)


@override_settings(CELERY_TASK_SOFT_TIME_LIMIT=0, BOOKING_DECIDE_BATCH=1, BOOKING_RECOVERY_GRACE_SECONDS=0)
def test_a_refused_hand_off_is_retried_then_left_to_the_recovery_job(tmp_path, caplog):
    """The drain is at its deadline after one batch; the broker refuses every attempt: the
    task still ends normally, the marker lapses soon, and the recovery job queues the show."""
    show = ShowFactory()
    _pending(show, 3)
    redis_client().set(wake_key(show.pk), 1)  # the wake-up that started this drain
    with broker_at(DEAD_BROKER):
        started = time.monotonic()
        assert decide_show(show.pk) == 1
        elapsed = time.monotonic() - started
    retried = [r for r in caplog.records if r.getMessage() == "hand-off failed; trying again"]
    assert len(retried) == dispatch.HAND_OFF_ATTEMPTS - 1
    assert elapsed >= sum(dispatch.HAND_OFF_BACKOFF_SECONDS * 2**n for n in range(dispatch.HAND_OFF_ATTEMPTS - 1))
    assert "could not hand the show off" in caplog.text
    assert 0 < redis_client().pttl(wake_key(show.pk)) <= dispatch.WAKE_MARKER_AFTER_FAILED_PUBLISH_MS
    assert Booking.objects.filter(show=show, status="pending").count() == 2

    server = PrivateRedis(tmp_path).start()
    try:
        with broker_at(server.url()):
            assert tasks.recover_pending_bookings() == 0  # the marker still says "queued"
            procs.wait_until(lambda: not redis_client().exists(wake_key(show.pk)), timeout=10, what="the marker")
            redis_client().delete("booking:recovery-sweep")
            assert tasks.recover_pending_bookings() == 1
            assert _queued(server) == 1
    finally:
        server.kill()


@override_settings(CELERY_TASK_SOFT_TIME_LIMIT=0, BOOKING_DECIDE_BATCH=1)
def test_a_hand_off_reaches_a_broker_that_comes_back(tmp_path, caplog):
    """The broker is down when the drain hands its show off and up a moment later: the
    retried publish queues the show's next turn, and its marker keeps saying so."""
    show = ShowFactory()
    _pending(show, 3)
    server = PrivateRedis(tmp_path)  # its port is chosen, nothing listens there yet
    restart = threading.Timer(0.2, server.start)
    try:
        with broker_at(server.url()):
            restart.start()
            assert decide_show(show.pk) == 1
        restart.join()
        assert _queued(server) == 1
    finally:
        restart.cancel()
        server.kill()
    assert any(r.getMessage() == "hand-off failed; trying again" for r in caplog.records)
    assert "could not hand the show off" not in caplog.text
    assert redis_client().ttl(wake_key(show.pk)) > 2


# ---- the recovery job ----------------------------------------------------------------------


@override_settings(BOOKING_RECOVERY_GRACE_SECONDS=0)
def test_recovery_sweeps_queue_a_waiting_show_once(private_broker):
    """Shows whose wake-up waits in a long queue are still pending at every sweep: the
    sweeps queue each of them once, not once per sweep."""
    first, second = ShowFactory(), ShowFactory()
    _pending(first, 2)
    _pending(second, 1)
    sweeps = []
    for _ in range(4):
        redis_client().delete("booking:recovery-sweep")  # as if the sweep interval had passed
        sweeps.append(tasks.recover_pending_bookings())
    assert sweeps == [2, 0, 0, 0]
    assert _queued(private_broker) == 2
    # A show whose wake-up was taken (its marker cleared by the drain that found nothing to
    # do, say) and is pending again is queued by the next sweep.
    dispatch.clear_wake_marker(show_id=first.pk)
    redis_client().delete("booking:recovery-sweep")
    assert tasks.recover_pending_bookings() == 1
    assert _queued(private_broker) == 3
