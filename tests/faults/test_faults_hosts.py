"""Several worker hosts against one PostgreSQL and one broker; one host dies mid-sale.

Two worker "hosts" (separate Celery worker processes with their own node names, host1@ and
host2@, two pool processes each) drain a sale over several shows. While both are busy, every
process of host1 (its main process and its pool) is killed with SIGKILL, as a machine that
loses power. Nothing restarts it: host2 alone must finish the sale. host1's unacknowledged
wake-ups come back (RabbitMQ redelivers them when the connection drops; on Redis the recovery
job re-queues the shows once their locks have expired), and the checks in SQL must hold:
every accepted booking final, no seat twice, each show decided serially in acceptance order.
"""

import os
import signal

from tests.faults.stack import Clients, quantity_requests
from tests.harness.invariants import check_guarantees, rows, wait_until_final
from tests.harness.procs import alive, tcp_client_ports, wait_until

HOSTS = ("host1", "host2")
SHOWS = 6


def _host_mid_decision(stack, host: str) -> bool:
    """Whether a pool process of `host` has a decision transaction open."""
    db_port, in_transaction = stack.in_transaction()
    return any(tcp_client_ports(pid, remote_port=db_port) & in_transaction for pid in stack.pool_pids(host))


def test_a_worker_host_killed_mid_sale_loses_nothing_and_breaks_no_order(stack):
    service = stack(BOOKING_DECIDE_BATCH=5).start(workers=HOSTS, concurrency=2)
    show_ids = [service.create_show(rows=6, seats_per_row=10)["id"] for _ in range(SHOWS)]
    clients = Clients(service.base_url, service.tokens(100))
    groups = [proc.popen.pid for proc in service.workers.values()]
    # The first wave waits in the broker while both hosts are held, so that the drains
    # that follow are long and both hosts are busy when one of them dies.
    for group in groups:
        os.killpg(group, signal.SIGSTOP)
    try:
        clients.book_all(quantity_requests(show_ids, 240, seed=11))
    finally:
        for group in groups:
            os.killpg(group, signal.SIGCONT)
    second_wave = clients.book_all_in_background(quantity_requests(show_ids, 160, seed=12))

    wait_until(lambda: _host_mid_decision(service, "host1"), timeout=60, interval=0.005, what="host1 mid-decision")
    victims = [service.workers["host1"].popen.pid, *service.pool_pids("host1")]
    os.killpg(service.workers["host1"].popen.pid, signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in victims), timeout=10, what="host1's processes to die")
    with service.pg.connect() as conn:
        (decided_before_kill,) = rows(conn, "SELECT count(*) FROM core_booking WHERE status <> 'pending'")[0]

    second_wave.result(timeout=180)
    with service.pg.connect() as conn:
        wait_until_final(conn, clients.accepted, timeout=120, logs=service.logs)
        summary = check_guarantees(conn, clients.accepted, timings=clients.timings)
        (decided,) = rows(conn, "SELECT count(*) FROM core_booking WHERE status <> 'pending'")[0]
    assert clients.problems == []
    assert len(clients.accepted) == 400
    assert summary.get("confirmed")
    assert summary.get("failed")
    # host2 went on alone: most of the sale was decided after host1 died.
    assert decided > decided_before_kill
    assert "host2@" in service.workers["host2"].log()
