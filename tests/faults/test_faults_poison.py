"""Fault 7: a poison booking, whose decision raises every time.

A trigger in the test's private database refuses to confirm one booking (the one sent with
the Idempotency-Key "poison"), like the in-process test in test_services_bookings.py, but
here through gunicorn, two Celery workers and beat. Whatever the error looks like, the
booking must fail with its own reason (`processing_error`) after BOOKING_MAX_DECIDE_ATTEMPTS
attempts, the other bookings of its show must be decided as usual, and nothing may go on
looping in the queue afterwards.

`error` is the SQLSTATE the trigger raises: P0001 is a plain error; 54000
(program_limit_exceeded) is one psycopg2 reports as OperationalError, like an outage,
although PostgreSQL is up. Contention (a lock or statement timeout, a deadlock) is the
exception: it says other work was in the way, so it is retried and never counted against
the booking (tests/test_services_decide_errors.py).
"""

import time

import pytest

from tests.faults.stack import Clients, quantity_requests
from tests.harness.invariants import check_guarantees, execute, rows, wait_until_final
from tests.harness.procs import wait_until

ATTEMPTS = 3
POISON_SQL = """
CREATE FUNCTION fault_poison() RETURNS trigger AS $$
BEGIN
    IF NEW.idempotency_key = 'poison' AND NEW.status = 'confirmed' THEN
        RAISE EXCEPTION 'poison booking %%', NEW.id USING ERRCODE = %s;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER fault_poison BEFORE UPDATE ON core_booking FOR EACH ROW EXECUTE FUNCTION fault_poison();
"""


def _received(service) -> int:
    return sum(w.log().count("Task bookings.decide_show[") for w in service.workers.values())


def _quiet(service, *, seconds: float) -> bool:
    """No decision task queued or received during `seconds`."""
    before = _received(service)
    time.sleep(seconds)
    return service.redis.client().llen("bookings") == 0 and _received(service) == before


@pytest.mark.parametrize("error", ["P0001", "54000"])
def test_a_poison_booking_fails_alone_and_blocks_nobody(stack, error):
    service = stack(BOOKING_MAX_DECIDE_ATTEMPTS=ATTEMPTS).start(workers=("w1", "w2"), concurrency=1)
    show_ids = [service.create_show(rows=5, seats_per_row=8)["id"] for _ in range(2)]
    clients = Clients(service.base_url, service.tokens(40))
    with service.pg.connect() as conn:
        execute(conn, POISON_SQL, error)
        started = time.monotonic()
        poison = clients.book(0, {"show": show_ids[0], "seats": ["C4"]}, key="poison")
        clients.book_all(quantity_requests(show_ids, 60, seed=11))
        wait_until_final(conn, clients.accepted, timeout=30, logs=service.logs)
        decided_within = time.monotonic() - started
        summary = check_guarantees(conn, clients.accepted, timings=clients.timings)
        outcome = rows(conn, "SELECT status, failure_reason, decide_attempts FROM core_booking WHERE id = %s", poison)

        # Nothing goes on running for it: the queue empties and stays empty while the
        # recovery job sweeps three times (a few last no-op wake-ups may still run first).
        wait_until(lambda: _quiet(service, seconds=3), timeout=30, what="the queue to stay quiet")
        assert rows(conn, "SELECT decide_attempts FROM core_booking WHERE id = %s", poison) == [(ATTEMPTS,)]
    assert outcome == [("failed", "processing_error", ATTEMPTS)]
    assert clients.problems == []
    assert summary["failed"] >= 1
    assert summary["confirmed"] >= 40
    assert decided_within < 20
