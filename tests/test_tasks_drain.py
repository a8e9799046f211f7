"""The drain's linger: a drain that runs out of bookings waits briefly for the next one of
its show, unless another show's wake-up is queued (real Redis broker, real PostgreSQL)."""

import time

import pytest
from django.test import override_settings

from core.services.bookings import booking_submit
from tests.factories import ShowFactory, UserFactory
from workers import dispatch, tasks
from workers.dispatch import wakeups_queued
from workers.tasks import decide_show

pytestmark = pytest.mark.django_db

PRIVATE_QUEUE = "bookings-linger-test"


@pytest.fixture
def private_queue(monkeypatch):
    """Point the drain at a queue of its own, so that no worker of the e2e tests consumes
    what these tests queue (the broker is the real Redis)."""
    from workers.celery import app

    monkeypatch.setattr(dispatch, "bookings_queues", lambda: [PRIVATE_QUEUE])
    yield PRIVATE_QUEUE
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(PRIVATE_QUEUE)


def test_wakeups_queued_counts_the_bookings_queue(private_queue):
    assert not wakeups_queued()
    decide_show.apply_async(args=[123456], queue=private_queue)
    assert wakeups_queued()


@override_settings(BOOKING_DRAIN_LINGER_MS=200)
def test_a_drain_lingers_and_sees_a_booking_of_its_show(private_queue):
    show = ShowFactory()
    booking_submit(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    assert tasks._more_soon(show_id=show.pk)


@override_settings(BOOKING_DRAIN_LINGER_MS=200)
def test_a_drain_lets_go_after_the_linger_when_nothing_comes(private_queue):
    show = ShowFactory()
    started = time.monotonic()
    assert not tasks._more_soon(show_id=show.pk)
    assert time.monotonic() - started >= 0.2


@override_settings(BOOKING_DRAIN_LINGER_MS=5000)
def test_a_drain_does_not_linger_while_another_wake_up_waits(private_queue):
    show = ShowFactory()
    decide_show.apply_async(args=[show.pk + 1], queue=private_queue)
    started = time.monotonic()
    assert not tasks._more_soon(show_id=show.pk)
    assert time.monotonic() - started < 5


@override_settings(BOOKING_DRAIN_LINGER_MS=0)
def test_linger_can_be_switched_off(private_queue):
    show = ShowFactory()
    booking_submit(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    assert not tasks._more_soon(show_id=show.pk)
