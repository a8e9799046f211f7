"""Fault 2: Redis restarted without persistence while hundreds of bookings are queued.

Every queued wake-up, show lock and wake-up marker is gone; the booking rows are safe in
PostgreSQL. The recovery job (maintenance.recover_pending_bookings, scheduled by a real
`celery beat`) finds the bookings pending past BOOKING_RECOVERY_GRACE_SECONDS and queues
their shows again; the workers and the web processes reconnect by themselves.
"""

import os
import signal

from tests.faults.stack import Clients, quantity_requests
from tests.harness.invariants import check_guarantees, rows, wait_until_final
from tests.harness.procs import wait_until

SHOWS = 20
BOOKINGS = 300


def test_redis_restarted_empty_with_hundreds_of_bookings_queued(stack):
    service = stack().start(workers=("w1", "w2"), concurrency=1)
    show_ids = [service.create_show(rows=4, seats_per_row=5)["id"] for _ in range(SHOWS)]
    clients = Clients(service.base_url, service.tokens(50))
    # The workers are held while the bookings queue up, as behind a slow or stuck drain.
    groups = [proc.popen.pid for proc in service.workers.values()]
    for group in groups:
        os.killpg(group, signal.SIGSTOP)
    try:
        clients.book_all(quantity_requests(show_ids, BOOKINGS, seed=3))
        broker = service.redis.client()
        # One wake-up per show, less the one each held worker's blocking pop had already taken.
        assert broker.llen("bookings") >= SHOWS - len(groups)
        with service.pg.connect() as conn:
            assert rows(conn, "SELECT count(*) FROM core_booking WHERE status = 'pending'")[0][0] == BOOKINGS

        service.redis.kill()
        service.redis.start()  # same port, empty: no persistence
        assert service.redis.client().dbsize() == 0
    finally:
        for group in groups:
            os.killpg(group, signal.SIGCONT)

    with service.pg.connect() as conn:
        waited = wait_until_final(conn, clients.accepted, timeout=60, logs=service.logs)
        summary = check_guarantees(conn, clients.accepted, timings=clients.timings)
    assert len(clients.accepted) == BOOKINGS
    assert clients.problems == []
    assert summary["confirmed"]
    assert summary["failed"]
    assert "re-queued overdue pending bookings" in "".join(w.log() for w in service.workers.values())
    assert waited < 30

    # Service resumed by itself: a new booking is accepted and decided as usual.
    fresh = service.create_show(rows=2, seats_per_row=2)["id"]
    after = Clients(service.base_url, service.tokens(1))
    booking_id = after.book(0, {"show": fresh, "seats": ["A1"]}, within=20)
    assert booking_id
    with service.pg.connect() as conn:
        wait_until(
            lambda: rows(conn, "SELECT status FROM core_booking WHERE id = %s", booking_id)[0][0] == "confirmed",
            timeout=20,
            what="a booking after the restart",
        )
    assert after.problems == []
