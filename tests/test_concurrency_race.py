"""Race: 300 distinct users book one 100-seat show at once through gunicorn, decided by
several Celery worker processes; then the contract's invariants are checked in SQL
(tests/harness/invariants.py: no seat twice, capacity, every accepted booking final and
decided serially, first accepted first decided, what the clients polled)."""

import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from tests.factories import ShowFactory, UserFactory
from tests.harness import invariants
from tests.harness.polling import poll_until_final
from tests.harness.service import start_worker

pytestmark = [pytest.mark.e2e, pytest.mark.race, pytest.mark.django_db(transaction=True)]

USERS = 300
LATE_SINGLES = 20  # submitted after every other 202: by the order guarantee they come last


@pytest.fixture
def second_worker(live_stack):
    """A second worker instance, so that deciders in different processes compete for shows."""
    worker = start_worker(live_stack.log_dir, concurrency=2, name="race")
    yield worker
    worker.stop()


def _requests(rng: random.Random) -> list[dict]:
    """Mixed explicit seats (overlapping on purpose: rows A-D only) and quantities."""
    requests = []
    for i in range(USERS - LATE_SINGLES):
        if i % 3 == 0:
            row = rng.choice("ABCD")
            start = rng.randint(1, 8)
            requests.append({"seats": [f"{row}{n}" for n in range(start, start + rng.randint(1, 3))]})
        else:
            requests.append({"quantity": rng.randint(1, 4)})
    return requests


def test_concurrent_bookings_never_oversell(live_stack, second_worker):
    show = ShowFactory(screen__rows=10, screen__seats_per_row=10)
    users = UserFactory.create_batch(USERS)
    requests = _requests(random.Random(20261128))
    clients = [live_stack.client(user) for user in users]

    def submit(args):
        client, body = args
        submitted = time.monotonic()
        response = client.post("/api/v1/bookings", json={"show": show.pk, **body})
        assert response.status_code == 202, response.text
        return response.json()["id"], body, (submitted, time.monotonic())

    try:
        with ThreadPoolExecutor(max_workers=48) as pool:
            accepted = list(pool.map(submit, zip(clients, requests, strict=False)))
            late = list(pool.map(submit, [(c, {"quantity": 1}) for c in clients[-LATE_SINGLES:]]))
            accepted += late
            finals = list(
                pool.map(
                    lambda pair: poll_until_final(pair[0], pair[1][0], timeout=60), zip(clients, accepted, strict=False)
                )
            )
    finally:
        for client in clients:
            client.close()

    asked = {booking_id: body for booking_id, body, _ in accepted}
    assert len(finals) == USERS == len(asked)
    violations, facts = invariants.show_violations(
        connection,
        show.pk,
        requests=asked,
        timings={booking_id: times for booking_id, _, times in accepted},
        finals={final["id"]: final for final in finals},
    )
    assert not violations, "\n".join(violations[:20])
    # Demand (about 600 seats) exceeds the 100 seats: sold out, and some bookings failed.
    assert facts["held"] == facts["capacity"] == 100
    assert facts["failed"] > 0
