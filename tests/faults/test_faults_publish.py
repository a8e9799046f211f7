"""Fault 3: a crash between the commit of a booking and the publish of its wake-up.

The booking row is the durable record and the queue message only a wake-up call, so a
booking whose message never reached the broker must still be decided: the recovery job
queues its show once it has been pending for BOOKING_RECOVERY_GRACE_SECONDS.

The web processes reach the broker through a TCP proxy (the workers and beat reach Redis
directly), so the broker can be made unreachable for the web processes only: first the
publish fails after the commit and the API still answers 202; then the web processes are
killed (SIGKILL) while their publish hangs, after the commit and before any answer, and the
clients retry with their Idempotency-Key.

A drain's own publish (its hand-off to the show's next turn) meets a frozen broker too: it
gives up in bounded time and leaves the show to its lapsing marker.
"""

import os
import signal
import time

import httpx
from django.conf import settings

from core.decision_queue import HAND_OFF_SECONDS, WAKE_MARKER_AFTER_FAILED_PUBLISH_MS, hand_off, send_wake, wake_key
from core.redis import redis_client
from tests.faults.stack import Clients, quantity_requests
from tests.harness.invariants import check_guarantees, rows, wait_until_final
from tests.harness.procs import alive, children, wait_until
from tests.harness.servers import TcpProxy
from tests.harness.service import broker_at


def _start(stack):
    service = stack()
    proxy = TcpProxy(service.redis.port)
    service.start(workers=("w1", "w2"), web_env={"CELERY_BROKER_URL": f"redis://127.0.0.1:{proxy.port}/0"})
    return service, proxy


def test_bookings_whose_wake_up_failed_to_publish_are_decided(stack):
    service, proxy = _start(stack)
    try:
        show_ids = [service.create_show(rows=8, seats_per_row=10)["id"] for _ in range(3)]
        clients = Clients(service.base_url, service.tokens(60))
        clients.book_all(quantity_requests(show_ids, 60, seed=5))
        # Every drain done: a drain still running would serve the shows the next bookings
        # make ready (the ready sets are in Redis, which the web still reaches), and nothing
        # would be left for the recovery job.
        with service.pg.connect() as conn:
            wait_until_final(conn, clients.accepted, timeout=30, logs=service.logs)
        broker = service.redis.client()
        wait_until(lambda: not broker.keys("booking:wake:*"), timeout=10, what="the drains to finish")

        proxy.cut()  # the broker is unreachable for the web processes from now on
        clients.book_all(quantity_requests(show_ids, 240, seed=6))
        with httpx.Client(base_url=service.base_url) as probe:
            ready = probe.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["details"]["checks"]["broker"] == "unavailable"

        with service.pg.connect() as conn:
            waited = wait_until_final(conn, clients.accepted, timeout=60, logs=service.logs)
            summary = check_guarantees(conn, clients.accepted, timings=clients.timings)
    finally:
        proxy.close()
    assert len(clients.accepted) == 300
    assert clients.problems == []
    assert clients.max_latency < 5  # a failing publish does not hold the answer for long
    assert summary["confirmed"]
    assert summary["failed"]
    assert "could not queue a decision" in service.web.log()
    assert "re-queued overdue pending bookings" in "".join(w.log() for w in service.workers.values())
    assert waited < 30


def test_web_processes_killed_between_commit_and_publish(stack):
    service, proxy = _start(stack)
    try:
        show_ids = [service.create_show(rows=5, seats_per_row=8)["id"] for _ in range(2)]
        clients = Clients(service.base_url, service.tokens(10))
        clients.book_all(quantity_requests(show_ids, 10, seed=7))
        with service.pg.connect() as conn:
            wait_until_final(conn, clients.accepted, timeout=30, logs=service.logs)
        broker = service.redis.client()
        wait_until(lambda: not broker.keys("booking:wake:*"), timeout=10, what="the drains to finish")

        # The publish now hangs: one request per show (one per web worker) commits its row,
        # then blocks in the publish of its show's wake-up, before answering.
        proxy.hold()
        in_flight = clients.book_all_in_background([{"show": pk, "quantity": 1} for pk in show_ids], within=60)
        with service.pg.connect() as conn:
            wait_until(
                lambda: rows(conn, "SELECT count(*) FROM core_booking")[0][0] == 12,
                timeout=10,
                what="two rows committed whose answer has not been sent",
            )
        assert len(clients.accepted) == 10
        web_workers = children(service.web.popen.pid)
        for pid in web_workers:
            os.kill(pid, signal.SIGKILL)
        # The held wake-ups die with their connections; then the broker is reachable again.
        proxy.cut()
        proxy.restore()
        wait_until(lambda: not any(alive(pid) for pid in web_workers), timeout=10, what="the killed web workers")

        # The clients retry with their Idempotency-Key: the original bookings, no second ones.
        in_flight.result(timeout=60)
        with service.pg.connect() as conn:
            wait_until_final(conn, clients.accepted, timeout=60, logs=service.logs)
            summary = check_guarantees(conn, clients.accepted, timings=clients.timings)
            total = rows(conn, "SELECT count(*) FROM core_booking")[0][0]
    finally:
        proxy.close()
    assert len(clients.accepted) == 12 == total
    assert clients.statuses["network"] >= 2  # the killed requests were never answered
    assert clients.problems == []
    assert summary == {"confirmed": 12}


def test_a_drain_handing_off_to_a_frozen_broker_lets_go_of_its_show_in_time(private_redis):
    """Fault 3b: the broker is frozen (SIGSTOP) when a drain hands its show off. Every
    attempt waits out the broker's socket timeouts; the drain still gives up within a bounded
    time, well inside its show lock's expiry, and leaves the show's marker to lapse so that
    the show is queued again once the broker answers."""
    show_id = 424242
    redis_client().set(wake_key(show_id), 1, ex=settings.BOOKING_LOCK_TIMEOUT)  # the drain's marker
    with broker_at(private_redis.url()):
        send_wake(show_id=show_id)  # connected while the broker still answers
        private_redis.popen.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            assert hand_off(show_id=show_id) is False
            elapsed = time.monotonic() - started
        finally:
            private_redis.popen.send_signal(signal.SIGCONT)
    # One attempt takes at most a few seconds (the publish's own retry and socket timeouts).
    assert elapsed < HAND_OFF_SECONDS + 6 < settings.BOOKING_LOCK_TIMEOUT
    assert 0 < redis_client().pttl(wake_key(show_id)) <= WAKE_MARKER_AFTER_FAILED_PUBLISH_MS
