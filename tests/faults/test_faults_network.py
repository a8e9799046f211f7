"""Fault 6: a slow network between the service and both of its stores.

Every process reaches PostgreSQL and Redis through TCP proxies that delay each chunk of data
by DELAY seconds each way, so every query, lock operation and publish is slow, and the show
locks are short (BOOKING_LOCK_TIMEOUT=1). The clients are impatient: they give up on a
request after a short timeout and retry it with the same Idempotency-Key while the first
attempt may still be running. Bookings must still complete, with no duplicate booking and
no seat held twice.
"""

from tests.faults.stack import Clients, quantity_requests
from tests.harness.invariants import check_guarantees, rows, wait_until_final
from tests.harness.servers import TcpProxy

# Per chunk and direction: a booking request makes about five round trips to PostgreSQL and
# Redis (token user, throttle, the insert, the wake-up marker), so it takes about 0.3 s, and
# the clients' first attempt (0.2 s) mostly gives up while the request runs on.
DELAY = 0.03
BOOKINGS = 60


def test_slow_network_to_redis_and_postgres(stack, private_pg, private_redis):
    pg_proxy = TcpProxy(private_pg.port, delay=DELAY)
    redis_proxy = TcpProxy(private_redis.port, delay=DELAY)
    slow_redis = f"redis://127.0.0.1:{redis_proxy.port}/0"
    service = None
    try:
        service = stack(
            DATABASE_URL=f"postgres://root@127.0.0.1:{pg_proxy.port}/booking",
            REDIS_URL=slow_redis,
            CELERY_BROKER_URL=slow_redis,
            BOOKING_LOCK_TIMEOUT=1,
        ).start(workers=("w1", "w2"), concurrency=1, web_workers=4)
        show_ids = [service.create_show(rows=3, seats_per_row=10)["id"] for _ in range(2)]
        clients = Clients(service.base_url, service.tokens(40), timeout=0.2, impatient=True, concurrency=8)
        clients.book_all(quantity_requests(show_ids, BOOKINGS, seed=10), within=90)
        with private_pg.connect() as conn:
            wait_until_final(conn, clients.accepted, timeout=60, logs=service.logs)
            summary = check_guarantees(conn, clients.accepted, timings=clients.timings)
            keys = rows(conn, "SELECT idempotency_key, count(*) FROM core_booking GROUP BY 1")
    finally:
        if service is not None:
            service.stop()  # before the proxies go: the processes talk through them
        pg_proxy.close()
        redis_proxy.close()
    assert len(clients.accepted) == BOOKINGS
    assert clients.problems == []
    assert clients.statuses["timeout"] >= BOOKINGS / 2, "requests must race their own retries"
    assert len(keys) == BOOKINGS
    assert {count for _, count in keys} == {1}
    assert set(clients.by_key) == {key for key, _ in keys}
    assert summary["confirmed"]
    assert summary["failed"]
