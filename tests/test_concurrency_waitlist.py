"""The waiting list under concurrency, through the real processes: gunicorn, a Celery worker
and celery beat (which runs the hold expiry every half second), on the test database and a
Redis of their own (so that no other test's worker, with other timings, takes their jobs).

Two sold-out shows, a free one and a paying one. Many users join their waiting lists at
once; then holders cancel, waiters leave, offers are confirmed or left to expire (a paying
show's offers all expire: nobody pays here), and every expiry passes its seats on, all
concurrently. Afterwards, in SQL: the contract's invariants (tests/harness/invariants.py),
offers never ahead of the seats freed, first come first served among the entries that fit,
every offer a well-formed held/confirmed/expired booking of its entry, and what the clients
were told is what PostgreSQL holds.
"""

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection

from tests import openapi_check
from tests.conftest import bearer
from tests.factories import ShowFactory, UserFactory
from tests.harness import invariants, service
from tests.harness.procs import wait_until
from tests.harness.servers import PrivateRedis

pytestmark = [pytest.mark.e2e, pytest.mark.race, pytest.mark.django_db(transaction=True)]

OFFER_SECONDS = 2.4
STACK_ENV = {
    # The holders' own holds are set in SQL below; offers expire within seconds.
    "BOOKING_HOLD_MINUTES": 1,
    "WAITLIST_OFFER_MINUTES": OFFER_SECONDS / 60,
    "BOOKING_HOLD_SWEEP_SECONDS": 0.5,
    "BOOKING_RECOVERY_GRACE_SECONDS": 2,
    "BOOKING_RECOVERY_INTERVAL_SECONDS": 1,
}


@pytest.fixture
def stack(tmp_path):
    redis_server = PrivateRedis(tmp_path).start()
    env = {**STACK_ENV, "REDIS_URL": redis_server.url(), "CELERY_BROKER_URL": redis_server.url()}
    procs = []
    try:
        web, base_url = service.start_web(tmp_path, **env)
        procs.append(web)
        procs.append(service.start_worker(tmp_path, concurrency=2, name="wl", **env))
        procs.append(service.start_beat(tmp_path, **env))
        yield base_url, lambda: "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in procs)
    finally:
        for proc in procs:
            proc.stop()
        redis_server.kill()


def client(base_url: str, token: str) -> httpx.Client:
    """A client of one user (`token`: their Authorization header, made beforehand in the
    test's thread: making one writes to the database, and the client threads must not open
    connections of their own)."""
    hooks = {"response": [openapi_check.check_httpx]} if not openapi_check.node_missing_reason() else {}
    return httpx.Client(base_url=base_url, headers={"Authorization": token}, timeout=30, event_hooks=hooks)


def send(c: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    """One request, retried after Retry-After while the service sheds load (429, 503)."""
    deadline = time.monotonic() + 30
    while True:
        response = c.request(method, url, **kwargs)
        if response.status_code not in (429, 503) or time.monotonic() > deadline:
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")) * random.uniform(0.5, 1))


def rows(query: str, *params) -> list[tuple]:
    return invariants.rows(connection, query, *params)


def sell_out(base_url: str, show, holders: int, logs) -> list:
    """`holders` users take two seats each through the API; waits until all are decided."""
    users = [UserFactory() for _ in range(holders)]
    for user in users:
        user.token = bearer(user)
        with client(base_url, user.token) as c:
            assert send(c, "POST", "/api/v1/bookings", json={"show": show.pk, "quantity": 2}).status_code == 202
    wait_until(
        lambda: not rows("SELECT 1 FROM core_booking WHERE show_id = %s AND status = 'pending'", show.pk),
        timeout=60,
        what=f"show {show.pk} decided\n{logs()}",
    )
    return users


class Waiter(threading.Thread):
    """A user on a waiting list who polls the entry, takes an offer (or not), or leaves."""

    def __init__(self, base_url: str, show, quantity: int, *, takes: bool, leaves_after: float | None, stop):
        super().__init__(daemon=True)
        self.user = UserFactory()
        self.token = bearer(self.user)
        self.base_url, self.show, self.quantity = base_url, show, quantity
        self.takes, self.leaves_after, self.stop = takes, leaves_after, stop
        self.entry_id: int | None = None
        self.told: list[tuple[str, str, int]] = []  # (what, booking id, status code)
        self.errors: list[str] = []

    def join_list(self) -> None:
        with client(self.base_url, self.token) as c:
            response = send(c, "POST", f"/api/v1/shows/{self.show.pk}/waitlist", json={"quantity": self.quantity})
        assert response.status_code == 201, response.text
        self.entry_id = response.json()["id"]

    def run(self) -> None:
        started = time.monotonic()
        try:
            with client(self.base_url, self.token) as c:
                while not self.stop.is_set():
                    time.sleep(random.uniform(0.15, 0.4))
                    entry = send(c, "GET", f"/api/v1/waitlist/{self.entry_id}").json()
                    if entry["status"] == "waiting" and self.leaves_after is not None:
                        if time.monotonic() - started > self.leaves_after:
                            left = send(c, "DELETE", f"/api/v1/waitlist/{self.entry_id}")
                            self.told.append(("leave", "", left.status_code))
                            self.leaves_after = None
                    elif entry["status"] == "offered" and self.takes:
                        confirm = send(c, "POST", f"/api/v1/bookings/{entry['booking']}/confirm")
                        self.told.append(("confirm", entry["booking"], confirm.status_code))
                        self.takes = False
                    elif entry["status"] not in ("waiting", "offered"):
                        return
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(exc))


def test_offers_under_concurrent_cancels_expiries_joins_and_leaves(stack):
    base_url, logs = stack
    rng = random.Random(13)
    free_show = ShowFactory(screen__rows=4, screen__seats_per_row=5)
    paying_show = ShowFactory(screen__rows=2, screen__seats_per_row=4, payment_required=True)
    free_holders = sell_out(base_url, free_show, 10, logs)
    sell_out(base_url, paying_show, 4, logs)
    assert rows("SELECT count(*) FROM core_bookedseat WHERE show_id IN (%s, %s)", free_show.pk, paying_show.pk) == [
        (28,)
    ]

    stop = threading.Event()
    waiters = [
        Waiter(
            base_url,
            show,
            rng.randint(1, 3),
            takes=show is free_show and rng.random() < 0.6,
            leaves_after=rng.uniform(0.5, 4) if rng.random() < 0.15 else None,
            stop=stop,
        )
        for show in [free_show] * 24 + [paying_show] * 10
    ]
    # Everyone joins at once.
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda waiter: waiter.join_list(), waiters))
    for waiter in waiters:
        waiter.start()

    # Holders of the free show cancel at random moments; the paying show's unpaid holds
    # reach their deadlines at random moments (beat's expiry frees them) meanwhile.
    rows(
        "UPDATE core_booking SET hold_expires_at = now() + (random() * 3 + 0.5) * interval '1 second'"
        " WHERE show_id = %s AND status = 'held' RETURNING id",
        paying_show.pk,
    )

    cancels = [
        (user, rows("SELECT id FROM core_booking WHERE user_id = %s", user.pk)[0][0], rng.uniform(0, 3))
        for user in free_holders[:6]
    ]

    def cancel(user, booking_id, delay) -> int:
        time.sleep(delay)
        with client(base_url, user.token) as c:
            return send(c, "DELETE", f"/api/v1/bookings/{booking_id}").status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(lambda args: cancel(*args), cancels)) == [200] * 6

    # Quiet: no hold or offer left open for a while (each one is taken or expires within
    # seconds, and each expiry may make new offers).
    quiet_since, deadline = None, time.monotonic() + 90
    while time.monotonic() < deadline:
        (open_offers,) = rows(
            "SELECT count(*) FROM core_booking WHERE status = 'held' AND show_id IN (%s, %s)",
            free_show.pk,
            paying_show.pk,
        )[0]
        if open_offers:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > OFFER_SECONDS + 1:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"offers still open after 90s\n{logs()}")
    stop.set()
    for waiter in waiters:
        waiter.join(30)
    assert not [e for w in waiters for e in w.errors], [e for w in waiters for e in w.errors][:5]

    for show in (free_show, paying_show):
        violations, _ = invariants.show_violations(connection, show.pk)
        assert not violations, violations
        violations = offer_violations(show.pk)
        assert not violations, "\n".join(violations[:20])
    client_violations = told_versus_stored(waiters)
    assert not client_violations, client_violations

    statuses = Counter(
        status for (status,) in rows("SELECT status FROM core_booking WHERE offer AND show_id = %s", free_show.pk)
    )
    paying = Counter(
        status for (status,) in rows("SELECT status FROM core_booking WHERE offer AND show_id = %s", paying_show.pk)
    )

    # The scenario did what it is about: offers taken, offers expired and passed on.
    assert statuses["confirmed"] >= 1, statuses
    assert paying["expired"] >= 2, paying
    assert set(paying) == {"expired"}, paying


def offer_violations(show_id: int) -> list[str]:
    violations = []
    # Every offer is a booking of its entry: the same user and quantity, held, confirmed,
    # expired or cancelled (declined), one entry per offer and one offer per offered entry.
    for booking_id, status, quantity, user_id, entry_user, entry_quantity, entry_status in rows(
        "SELECT b.id, b.status, b.quantity, b.user_id, e.user_id, e.quantity, e.status FROM core_booking b"
        " LEFT JOIN core_waitlistentry e ON e.booking_id = b.id WHERE b.show_id = %s AND b.offer",
        show_id,
    ):
        if (entry_user, entry_quantity, entry_status) != (user_id, quantity, "offered"):
            violations.append(f"offer {booking_id}: its entry is {(entry_user, entry_quantity, entry_status)}")
        if status not in ("held", "confirmed", "expired", "cancelled"):
            violations.append(f"offer {booking_id}: {status}")
    (orphans,) = rows(
        "SELECT count(*) FROM core_waitlistentry e JOIN core_booking b ON b.id = e.booking_id"
        " WHERE e.show_id = %s AND NOT b.offer",
        show_id,
    )[0]
    if orphans:
        violations.append(f"show {show_id}: {orphans} entries name a booking that is no offer")

    # Offers never ahead of what was freed: in time order, the seats offered never exceed
    # the seats freed so far (a cancel at its cancelled_at, an expiry at its deadline; an
    # offer made by a cancel carries the cancel's own timestamp, so frees sort first).
    events = rows(
        "SELECT cancelled_at, 0, cardinality(seats) FROM core_booking WHERE show_id = %s AND status = 'cancelled'"
        " AND decided_at IS NOT NULL"
        " UNION ALL SELECT hold_expires_at, 0, cardinality(seats) FROM core_booking"
        " WHERE show_id = %s AND status = 'expired'"
        " UNION ALL SELECT decided_at, 1, -cardinality(seats) FROM core_booking WHERE show_id = %s AND offer"
        " ORDER BY 1, 2",
        show_id,
        show_id,
        show_id,
    )
    balance = 0
    for at, _, seats in events:
        balance += seats
        if balance < 0:
            violations.append(f"show {show_id}: at {at} more seats were offered than had been freed")
            break

    # First come, first served among the entries that fit: when an entry was offered seats,
    # every earlier entry asking for no more seats had been offered already (in the same
    # transaction at the latest) or had left.
    entries = rows(
        "SELECT id, quantity, status, offered_at, ended_at FROM core_waitlistentry WHERE show_id = %s ORDER BY id",
        show_id,
    )
    for later_id, later_quantity, _, offered_at, _ in entries:
        if offered_at is None:
            continue
        for earlier_id, quantity, status, earlier_offered, ended_at in entries:
            if earlier_id >= later_id or quantity > later_quantity:
                continue
            served = earlier_offered is not None and earlier_offered <= offered_at
            gone = status in ("left", "closed") and ended_at <= offered_at
            if not (served or gone):
                violations.append(
                    f"show {show_id}: entry {later_id} ({later_quantity} seats) was offered seats at {offered_at}"
                    f" before entry {earlier_id} ({quantity}, {status}) that joined earlier"
                )
    return violations


def told_versus_stored(waiters: list[Waiter]) -> list[str]:
    """A confirm answered 200 is a confirmed booking; 409 one that was not held in time (or
    a paying show's); a leave answered 204 is a left entry, 409 an offered one."""
    violations = []
    for waiter in waiters:
        for what, booking_id, code in waiter.told:
            if what == "confirm":
                (status,) = rows("SELECT status FROM core_booking WHERE id = %s", booking_id)[0]
                if (code, status) not in ((200, "confirmed"), (409, "expired")):
                    violations.append(f"confirm of {booking_id}: answered {code}, the booking is {status}")
            else:
                (status,) = rows("SELECT status FROM core_waitlistentry WHERE id = %s", waiter.entry_id)[0]
                if (code, status) not in ((204, "left"), (409, "offered")):
                    violations.append(f"leave of entry {waiter.entry_id}: answered {code}, the entry is {status}")
    return violations
