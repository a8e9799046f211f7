"""Fault 1: a Celery process is killed with SIGKILL in the middle of a drain.

Two worker instances drain the shows; the first wave of bookings is queued while the
workers are held (SIGSTOP), so that the drain that follows is long (BOOKING_DECIDE_BATCH=5),
and a second wave is submitted during it. The process whose PostgreSQL session has an open
decision transaction is then killed: first a pool process, then (separately) a worker's
main process. Its transaction is rolled back by PostgreSQL, its message is redelivered
(acks_late, reject_on_worker_lost) or re-queued by the recovery job once its show lock has
expired, and every accepted booking must still reach exactly one final state.
"""

import os
import signal

from tests.faults.stack import Clients, quantity_requests
from tests.harness.invariants import check_guarantees, wait_until_final
from tests.harness.procs import alive, tcp_client_ports, wait_until


def _drainer(stack) -> tuple[str, int] | None:
    """(worker name, pool pid) of a pool process whose PostgreSQL session is mid-transaction."""
    db_port, in_transaction = stack.in_transaction()
    for name in stack.workers:
        for pid in stack.pool_pids(name):
            if tcp_client_ports(pid, remote_port=db_port) & in_transaction:
                return name, pid
    return None


def _run(stack, *, kill_main: bool) -> tuple[Clients, dict]:
    service = stack(BOOKING_DECIDE_BATCH=5).start(workers=("w1", "w2"), concurrency=1)
    show_ids = [service.create_show(rows=8, seats_per_row=10)["id"] for _ in range(2)]
    clients = Clients(service.base_url, service.tokens(100))
    groups = [proc.popen.pid for proc in service.workers.values()]
    for group in groups:
        os.killpg(group, signal.SIGSTOP)
    try:
        clients.book_all(quantity_requests(show_ids, 200, seed=1))
    finally:
        for group in groups:
            os.killpg(group, signal.SIGCONT)
    second_wave = clients.book_all_in_background(quantity_requests(show_ids, 100, seed=2))

    name, pool_pid = wait_until(lambda: _drainer(service), timeout=30, interval=0.005, what="a drain in progress")
    victim = service.workers[name].popen.pid if kill_main else pool_pid
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not alive(victim), timeout=10, what="the killed process to die")
    if kill_main:
        # Restore service: a replacement worker, as a supervisor would start.
        service.start_worker(f"{name}-restarted")

    second_wave.result(timeout=120)
    with service.pg.connect() as conn:
        wait_until_final(conn, clients.accepted, timeout=60, logs=service.logs)
        summary = check_guarantees(conn, clients.accepted, timings=clients.timings)
    assert clients.problems == []
    return clients, summary


def test_a_pool_process_killed_mid_drain_loses_nothing(stack):
    clients, summary = _run(stack, kill_main=False)
    assert len(clients.accepted) == 300
    assert summary.get("confirmed")
    assert summary.get("failed")


def test_a_worker_main_process_killed_mid_drain_loses_nothing(stack):
    clients, summary = _run(stack, kill_main=True)
    assert len(clients.accepted) == 300
    assert summary.get("confirmed")
    assert summary.get("failed")
