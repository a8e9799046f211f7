"""Fault 8: a worker frozen (SIGSTOP) inside its decision transaction, holding its show's
row and the rows of every booking it is deciding, while all their owners cancel at once.

The bookings are accepted while no worker runs, so that one drain takes them all in one
batch; a trigger in the test's private database pauses that batch while it writes the
first seat (on an advisory lock the test holds), the pool process is frozen, and the pause
released: the frozen transaction now holds the show row and every booking row, idle.

Then every owner sends DELETE /bookings/{id} at once, three times as many requests as
gunicorn has threads, retrying on 503 after Retry-After, while /healthz is probed. Each
request must be answered within about the web lock timeout (a retryable 503 `busy`, never
"database unavailable", never a hang), /healthz must keep answering, and the worker's
idle_in_transaction_session_timeout must end the frozen session, so that every cancel goes
through while the worker is still frozen. With no timeouts each DELETE waited for ever on
its booking row: the requests took every gunicorn thread and /healthz stopped answering.
"""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.faults.stack import Clients
from tests.harness.invariants import execute, rows, wait_until_final
from tests.harness.procs import tcp_client_ports, wait_until

BOOKINGS = 24  # three per gunicorn thread (2 workers x 4 threads)
IDLE_MS = 6000  # the worker's idle_in_transaction_session_timeout in this test
WEB_LOCK_MS = 2000
PAUSE = 4244
BREAKPOINT_SQL = f"""
CREATE FUNCTION fault_decider_pause() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({PAUSE});
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER fault_decider_pause BEFORE INSERT ON core_bookedseat
    FOR EACH ROW EXECUTE FUNCTION fault_decider_pause();
"""


def _pool_pid_at_breakpoint(service, conn) -> int | None:
    ports = {port for (port,) in rows(conn, "SELECT client_port FROM pg_stat_activity WHERE wait_event = 'advisory'")}
    for name in service.workers:
        for pid in service.pool_pids(name):
            if tcp_client_ports(pid, remote_port=service.pg.port) & ports:
                return pid
    return None


def _cancel_until_done(base_url: str, token: str, booking_id: str, *, within: float) -> list[tuple]:
    """DELETE until 200, honouring Retry-After; every answer as (status, code, seconds)."""
    answers = []
    deadline = time.monotonic() + within
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as client:
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                response = client.delete(f"/api/v1/bookings/{booking_id}")
            except httpx.TimeoutException:
                answers.append(("hang", None, time.monotonic() - started))
                continue
            code = response.json().get("code") if response.status_code != 200 else None
            answers.append((response.status_code, code, time.monotonic() - started))
            if response.status_code != 503:
                break
            assert response.headers.get("Retry-After") == "1", response.text
            time.sleep(float(response.headers["Retry-After"]))
    return answers


def _probe_health(base_url: str, until) -> list[float]:
    """/healthz every 0.2 s until `until()`; the seconds each probe took (inf: no answer)."""
    latencies = []
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while not until():
            started = time.monotonic()
            try:
                ok = client.get("/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.monotonic() - started if ok else float("inf"))
            time.sleep(0.2)
    return latencies


def test_cancels_against_a_frozen_decider_are_answered_and_healthz_keeps_answering(stack):
    service = stack(
        DB_LOCK_TIMEOUT_MS=WEB_LOCK_MS, DB_WORKER_IDLE_IN_TRANSACTION_TIMEOUT_MS=IDLE_MS, BOOKING_DRAIN_LINGER_MS=0
    ).start(workers=(), beat=False)
    show_id = service.create_show(rows=6, seats_per_row=10)["id"]
    tokens = service.tokens(BOOKINGS)
    clients = Clients(service.base_url, tokens)
    booking_ids = [clients.book(i, {"show": show_id, "quantity": 1}) for i in range(BOOKINGS)]
    assert all(booking_ids)
    assert clients.problems == []

    with service.pg.connect() as conn, service.pg.connect() as pauses:
        execute(conn, BREAKPOINT_SQL)
        execute(pauses, "SELECT pg_advisory_lock(%s)", PAUSE)
        service.start_worker("w1", concurrency=1)
        holder = wait_until(
            lambda: _pool_pid_at_breakpoint(service, conn), timeout=30, what="the drain paused in its transaction"
        )
        os.kill(holder, signal.SIGSTOP)
        try:
            execute(pauses, "SELECT pg_advisory_unlock(%s)", PAUSE)
            frozen_at = time.monotonic()
            with ThreadPoolExecutor(max_workers=BOOKINGS) as pool:
                cancels = [
                    pool.submit(_cancel_until_done, service.base_url, token, booking_id, within=40)
                    for token, booking_id in zip(tokens, booking_ids, strict=True)
                ]
                health = _probe_health(service.base_url, until=lambda: all(c.done() for c in cancels))
                answers = [c.result() for c in cancels]
            all_done_after = time.monotonic() - frozen_at
            cancelled_while_frozen = rows(
                conn, "SELECT count(*) FROM core_booking WHERE show_id = %s AND status = 'cancelled'", show_id
            )[0][0]
        finally:
            os.kill(holder, signal.SIGCONT)
        wait_until_final(conn, booking_ids, timeout=60, logs=service.logs)
        statuses = dict(rows(conn, "SELECT status, count(*) FROM core_booking WHERE show_id = %s GROUP BY 1", show_id))
        held = rows(conn, "SELECT count(*) FROM core_bookedseat WHERE show_id = %s", show_id)[0][0]

    flat = [answer for per_booking in answers for answer in per_booking]
    # Every request was answered, quickly: a busy 503 or the cancellation, never a hang.
    assert {status for status, _, _ in flat} <= {200, 503}, flat
    assert {code for status, code, _ in flat if status == 503} == {"busy"}, flat
    assert max(seconds for _, _, seconds in flat) < 3 * WEB_LOCK_MS / 1000 + 8, flat
    assert sum(status == 503 for status, _, _ in flat) >= 8  # the holder was in the way of a round at least
    # Every owner's cancel went through while the worker was still frozen: the idle session
    # was ended by the server and its locks released.
    assert all(per_booking[-1][0] == 200 for per_booking in answers), answers
    assert cancelled_while_frozen == BOOKINGS
    assert all_done_after < IDLE_MS / 1000 + 15
    assert "idle-in-transaction timeout" in service.pg.log()
    # /healthz answered throughout, at worst after the requests queued before it on its
    # gunicorn worker's threads (each of those gives up within the lock timeout).
    assert health
    assert max(health) < 3 * WEB_LOCK_MS / 1000 + 4, health
    assert statuses == {"cancelled": BOOKINGS}
    assert held == 0
