"""Check-in at the door through the real processes (gunicorn, PostgreSQL): many scanners,
each with its own HTTP connection, scanning at once. One code admits exactly once; a cancel
racing the scans of a booking's codes is decided once (the booking cancelled and every scan
void, or the cancel refused and every code admitted once); then the invariants in SQL."""

import random
import threading
import time
from collections import Counter, defaultdict

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from core import tickets
from core.models import BookingLine
from core.selectors import SCANNERS_GROUP
from core.services.decisions import booking_decide_batch
from tests.factories import ShowFactory, UserFactory
from tests.harness.invariants import show_violations, ticket_violations
from tests.locking import pending_booking

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCANNERS = 16


def scanner():
    group, _ = Group.objects.get_or_create(name=SCANNERS_GROUP)
    user = UserFactory()
    user.groups.add(group)
    return user


def confirmed(user, show, seats):
    booking = pending_booking(user, show, seats=seats)
    booking_decide_batch(show_id=show.pk)
    booking.refresh_from_db()
    assert booking.status == "confirmed"
    return booking


def send(client, method: str, path: str, body=None, *, timeout: float = 30, after: float = 0):
    """One request (`after` seconds from now), retried as a scanner app would while the
    service sheds load (503 overloaded / busy, 429), never longer than `timeout`."""
    time.sleep(after)
    deadline = time.monotonic() + timeout
    while True:
        response = client.request(method, path, json=body)
        if response.status_code not in (429, 503) or time.monotonic() > deadline:
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")) * random.random())


def at_once(jobs: list) -> list:
    """Run every job in its own thread, released together; their results in order."""
    results: list = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(index, job):
        start.wait(30)
        results[index] = job()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
        assert not thread.is_alive(), "a scanner never got its answer"
    return results


def test_many_scanners_one_code_one_admission(live_stack):
    show = ShowFactory()
    booking = confirmed(UserFactory(), show, ["A1"])
    code = tickets.ticket_code(BookingLine.objects.get(booking=booking).ticket_id)
    clients = [live_stack.client(scanner()) for _ in range(SCANNERS)]
    try:
        answers = at_once([lambda c=c: send(c, "POST", "/api/v1/checkins", {"code": code}) for c in clients])
    finally:
        for client in clients:
            client.close()
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {200: 1, 409: SCANNERS - 1}, [a.text for a in answers if a.status_code not in (200, 409)]
    (admitted,) = [a.json() for a in answers if a.status_code == 200]
    for refused in (a.json() for a in answers if a.status_code == 409):
        assert refused["code"] == "already_admitted"
        assert refused["details"]["admitted_at"] == admitted["admitted_at"]
    assert BookingLine.objects.filter(booking=booking, admitted_at__isnull=False).count() == 1
    assert ticket_violations(connection, show.pk) == []


def test_scans_of_a_bookings_codes_racing_its_cancel_are_decided_once(live_stack):
    show = ShowFactory(screen__rows=8, screen__seats_per_row=6)
    rows_of_seats = [[f"{row}{n}" for n in range(1, 5)] for row in "ABCDEFGH"]
    owners = [UserFactory() for _ in rows_of_seats]
    bookings = [confirmed(owner, show, seats) for owner, seats in zip(owners, rows_of_seats, strict=True)]
    door = [live_stack.client(scanner()) for _ in range(2)]
    homes = [live_stack.client(owner) for owner in owners]
    jobs, labels = [], []
    try:
        for number, (booking, home) in enumerate(zip(bookings, homes, strict=True)):
            # Jitter, so that both orders happen: the door tends to be first for half of the
            # bookings, the owner's cancel for the other half. Either order must hold.
            scan_delay, cancel_delay = (0, 0.05) if number % 2 else (0.05, 0)
            for line in BookingLine.objects.filter(booking=booking):
                code = tickets.ticket_code(line.ticket_id)
                for client in door:
                    jobs.append(
                        lambda c=client, code=code, d=scan_delay: send(
                            c, "POST", "/api/v1/checkins", {"code": code}, after=random.uniform(d, d + 0.1)
                        )
                    )
                    labels.append((booking.pk, code))
            jobs.append(
                lambda h=home, pk=booking.pk, d=cancel_delay: send(
                    h, "DELETE", f"/api/v1/bookings/{pk}", after=random.uniform(d, d + 0.1)
                )
            )
            labels.append((booking.pk, "cancel"))
        random.shuffle(order := list(range(len(jobs))))
        answers = dict(zip(order, at_once([jobs[i] for i in order]), strict=True))
    finally:
        for client in door + homes:
            client.close()

    by_booking: dict = defaultdict(lambda: {"cancel": None, "codes": defaultdict(list)})
    for index, (booking_id, what) in enumerate(labels):
        answer = answers[index]
        if what == "cancel":
            by_booking[booking_id]["cancel"] = answer
        else:
            by_booking[booking_id]["codes"][what].append(answer)
    outcomes = Counter()
    for booking in bookings:
        seen = by_booking[booking.pk]
        booking.refresh_from_db()
        admitted = BookingLine.objects.filter(booking=booking, admitted_at__isnull=False).count()
        cancel = seen["cancel"]
        if cancel.status_code == 200:
            # Cancelled first: no ticket of it ever admitted, every scan void.
            outcomes["cancelled"] += 1
            assert booking.status == "cancelled"
            assert admitted == 0
            for scans in seen["codes"].values():
                assert {(s.status_code, s.json()["code"]) for s in scans} == {(409, "ticket_void")}
        else:
            # A ticket was admitted first: the cancel is refused, every code admits exactly once.
            outcomes["refused"] += 1
            assert (cancel.status_code, cancel.json()["code"]) == (409, "ticket_admitted"), cancel.text
            assert booking.status == "confirmed"
            assert admitted == 4
            for scans in seen["codes"].values():
                assert sorted(s.status_code for s in scans) == [200, 409]
                assert {s.json()["code"] for s in scans if s.status_code == 409} == {"already_admitted"}
    print("check-in vs cancel outcomes:", dict(outcomes))
    assert sum(outcomes.values()) == len(bookings)
    found, _ = show_violations(connection, show.pk)
    assert found == []
