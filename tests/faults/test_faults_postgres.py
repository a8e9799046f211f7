"""Fault 4: PostgreSQL stopped for a few seconds under load.

While clients keep booking, the private cluster is shut down (`pg_ctl stop -m fast`: every
session is terminated) and started again a few seconds later. The API must answer 503 with
the error shape and Retry-After, quickly (never a 500, a stack trace or a hang); the workers
retry; nothing accepted is lost; and the service resumes by itself.
"""

import time

import httpx

from tests.faults.stack import ERROR_SHAPE, Clients, quantity_requests
from tests.harness.invariants import check_guarantees, rows, wait_until_final
from tests.harness.procs import wait_until

OUTAGE_SECONDS = 4


def test_postgres_stopped_under_load(stack):
    service = stack().start(workers=("w1", "w2"), concurrency=1)
    show_ids = [service.create_show(rows=10, seats_per_row=10)["id"] for _ in range(3)]
    clients = Clients(service.base_url, service.tokens(100), timeout=10)
    load = clients.book_all_in_background(quantity_requests(show_ids, 400, seed=4), within=90)
    wait_until(lambda: len(clients.accepted) >= 60, timeout=60, what="bookings before the outage")

    service.pg.stop("fast")
    outage_started = time.monotonic()
    probes = []
    with httpx.Client(base_url=service.base_url, headers={"Authorization": f"Bearer {clients.tokens[0]}"}) as probe:
        while time.monotonic() - outage_started < OUTAGE_SECONDS:
            started = time.monotonic()
            for path in ("/readyz", "/api/v1/bookings", f"/api/v1/shows/{show_ids[0]}"):
                response = probe.get(path, timeout=10)
                probes.append((path, response.status_code, response.json(), time.monotonic() - started))
            time.sleep(0.3)
    service.pg.start()

    load.result(timeout=150)
    with service.pg.connect() as conn:
        wait_until_final(conn, clients.accepted, timeout=60, logs=service.logs)
        summary = check_guarantees(conn, clients.accepted, timings=clients.timings)

    assert clients.problems == []  # only 202s and well-formed 503s; no hang
    assert clients.statuses[503] > 0, "the outage was never seen by a client"
    assert clients.max_latency < 8
    assert len(clients.accepted) == 400
    assert summary["confirmed"]
    assert summary["failed"]
    for path, status, body, seconds in probes:
        assert status == 503, (path, status, body)
        assert set(body) == ERROR_SHAPE
        assert body["code"] == "service_unavailable"
        assert seconds < 8
    assert any(body["details"].get("checks", {}).get("database") == "unavailable" for _, _, body, _ in probes)

    # Service resumed by itself: readiness is back and a new booking is decided.
    with httpx.Client(base_url=service.base_url) as probe:
        wait_until(lambda: probe.get("/readyz").status_code == 200, timeout=20, what="readiness after the restart")
    booking_id = clients.book(0, {"show": show_ids[0], "quantity": 1}, within=20)
    assert booking_id
    with service.pg.connect() as conn:
        wait_until(
            lambda: rows(conn, "SELECT status FROM core_booking WHERE id = %s", booking_id)[0][0] != "pending",
            timeout=20,
            what="a booking after the restart",
        )
