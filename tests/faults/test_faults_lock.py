"""Fault 5: the holder of a show's lock frozen (SIGSTOP) past the lock's expiry while another
worker decides the same show, then resumed (SIGCONT).

The freeze is placed at the worst moment, with two breakpoints: triggers in the test's
private database that pause on an advisory lock the test holds.

1. Booking X (seat A1) pauses inside its web request, after its INSERT drew its acceptance
   sequence number and before it commits: it will commit late, with an older sequence number
   than booking Y.
2. Booking Y (seats A1, A2) is accepted and its decision pauses while writing seat A1, inside
   the decider's transaction: the pool process whose session waits there is frozen (SIGSTOP)
   and the breakpoint released, so that the frozen transaction holds Y's seats, uncommitted.
3. X is let through and commits; the test waits until the show's Redis lock
   (BOOKING_LOCK_TIMEOUT=2) has expired and submits a second wave of bookings, which wakes
   the other worker: it takes the expired lock and decides the show, one booking per batch
   (BOOKING_DECIDE_BATCH=1, where the race is tightest). The oldest pending booking is X, and
   X is not locked by the frozen transaction.
4. After a while the frozen process resumes (SIGCONT) and commits.

The per-show serialization must make the other worker wait for the frozen transaction (the
show row is locked FOR NO KEY UPDATE by every decider), so that X sees A1 taken and fails.
With `no_constraint` the unique (show, seat_label) constraint is dropped from the private
database, so the serialization stands alone; with `constraint` the test also checks that
the constraint never had to refuse a second holder (the PostgreSQL log has no violation).

Guard removal, run once by hand (2026-11-28), to show that this test catches what it claims:

- Per-show serialization removed (the Redis lock ignored and the show row not locked):

      sed -i 's/locked_shows().filter(pk=show_id)/Show.objects.filter(pk=show_id)/' core/services/decisions.py
      sed -i 's/    if not lock.acquire():/    if not (lock.acquire() or True):/' core/services/drain.py
      .venv/bin/pytest tests/faults/test_faults_lock.py

  Observed: both cases fail. `constraint`: the other worker decided X with A1 while Y's
  A1 was written but uncommitted; its insert waited and was refused, so the PostgreSQL log
  reads `ERROR:  duplicate key value violates unique constraint "booked_seat_unique_per_show"`
  and `assert violations == []` fails. `no_constraint`: `AssertionError: seats held twice
  (show, seat, holders): [(1, 'A1', 2)]`. Removing only the show row lock (first sed alone)
  fails the same way: here the Redis lock has expired, so the row lock is the guard. Removing
  only the Redis lock passes: the row lock alone serialises the deciders (at the cost of
  blocked workers, which the Redis lock exists to avoid).

- The unique constraint as the last line: with the serialization removed as above, the
  `constraint` case keeps every seat single (only the "never had to refuse" check fails, as
  shown), while the `no_constraint` case sells A1 twice. With the serialization in place,
  both cases pass: the constraint is the last line, not the first.
"""

import os
import signal
import time

import pytest

from core.show_lock import show_lock_key
from tests.faults.stack import Clients, quantity_requests
from tests.harness.invariants import check_guarantees, execute, rows, unique_violations, wait_until_final
from tests.harness.procs import tcp_client_ports, wait_until
from tests.locking import pause_trigger

DECIDER_PAUSE, SUBMIT_PAUSE = 4242, 4243


BREAKPOINTS_SQL = pause_trigger(
    "fault_decider_pause", "core_bookedseat", "INSERT", "NEW.seat_label = 'A1'", DECIDER_PAUSE
) + pause_trigger("fault_submit_pause", "core_booking", "INSERT", "NEW.idempotency_key = 'late-commit'", SUBMIT_PAUSE)


WAITING = {
    # Sessions paused at a breakpoint of this test, and sessions waiting for a row lock.
    "at_breakpoint": "SELECT client_port FROM pg_stat_activity WHERE wait_event = 'advisory'",
    "for_a_lock": "SELECT client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
}


def _waiting(conn, what: str) -> set[int]:
    return {port for (port,) in rows(conn, WAITING[what])}


def _pool_pid(service, ports: set[int]) -> int | None:
    for name in service.workers:
        for pid in service.pool_pids(name):
            if tcp_client_ports(pid, remote_port=service.pg.port) & ports:
                return pid
    return None


@pytest.mark.parametrize("last_line", ["constraint", "no_constraint"])
def test_a_frozen_lock_holder_cannot_double_book(stack, last_line):
    # The breakpoints hold a web request and a decider for longer than the production
    # timeouts allow, and the frozen holder must live to commit: no web lock or statement
    # timeout, no idle-in-transaction cut-off here (test_faults_frozen_holder.py tests those).
    service = stack(
        BOOKING_LOCK_TIMEOUT=2,
        BOOKING_DECIDE_BATCH=1,
        DB_LOCK_TIMEOUT_MS=0,
        DB_STATEMENT_TIMEOUT_MS=0,
        DB_WORKER_IDLE_IN_TRANSACTION_TIMEOUT_MS=0,
    ).start(workers=("w1", "w2"), concurrency=1)
    show_id = service.create_show(rows=6, seats_per_row=10)["id"]
    clients = Clients(service.base_url, service.tokens(60))
    with service.pg.connect() as conn, service.pg.connect() as pauses:
        execute(conn, BREAKPOINTS_SQL)
        if last_line == "no_constraint":
            execute(conn, "ALTER TABLE core_bookedseat DROP CONSTRAINT booked_seat_unique_per_show")
        execute(pauses, "SELECT pg_advisory_lock(%s), pg_advisory_lock(%s)", DECIDER_PAUSE, SUBMIT_PAUSE)

        late = clients.book_all_in_background([{"show": show_id, "seats": ["A1"]}], key="late-commit")
        wait_until(lambda: _waiting(conn, "at_breakpoint"), timeout=10, what="X paused before commit")
        assert clients.book(1, {"show": show_id, "seats": ["A1", "A2"]})
        holder = wait_until(
            lambda: _pool_pid(service, _waiting(conn, "at_breakpoint")),
            timeout=15,
            what="the decider of Y paused in its transaction",
        )
        os.kill(holder, signal.SIGSTOP)
        try:
            execute(pauses, "SELECT pg_advisory_unlock(%s)", DECIDER_PAUSE)
            execute(pauses, "SELECT pg_advisory_unlock(%s)", SUBMIT_PAUSE)
            late.result(timeout=30)
            broker = service.redis.client()
            wait_until(lambda: not broker.exists(show_lock_key(show_id)), timeout=10, what="the lock to expire")

            second_wave = clients.book_all_in_background(quantity_requests([show_id], 40, seed=9))
            other = wait_until(
                lambda: _pool_pid(service, _waiting(conn, "for_a_lock")),
                timeout=15,
                what="the other worker to meet the frozen transaction",
            )
            assert other != holder
            time.sleep(1)
        finally:
            os.kill(holder, signal.SIGCONT)
        second_wave.result(timeout=60)
        wait_until_final(conn, clients.accepted, timeout=60, logs=service.logs)
        summary = check_guarantees(conn, clients.accepted, timings=clients.timings)
        (x_outcome,) = rows(
            conn, "SELECT status, failure_reason FROM core_booking WHERE idempotency_key = 'late-commit'"
        )
    violations = unique_violations(service.pg.log())
    assert clients.problems == []
    assert len(clients.accepted) == 42
    assert x_outcome == ("failed", "seats_unavailable")  # Y, decided first, holds A1
    assert summary["confirmed"]
    assert summary["failed"]
    # The serialization held on its own: the constraint never had to refuse a second holder.
    assert violations == []
