"""Queueing wake-ups: at most one per show, and a failed publish does not strand the show."""

import pytest

from core.redis import redis_client
from workers import dispatch
from workers.celery import app

pytestmark = pytest.mark.django_db


@pytest.fixture
def unreachable_broker(monkeypatch):
    """The Celery app publishes to a closed local port (a real, refused connection)."""
    original = app.conf.broker_url
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    _use_broker("amqp://guest:guest@127.0.0.1:1//" if original.startswith("amqp") else "redis://127.0.0.1:1/0")
    yield
    _use_broker(original)


def _use_broker(url: str) -> None:
    # kombu keeps its connection and producer pools per broker URL; dropping the app's
    # references makes it look them up again for the new URL (the old pools stay open).
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


def test_one_wake_up_per_show_while_one_is_pending(show):
    assert dispatch.wake_show(show_id=show.pk) is True
    assert dispatch.wake_show(show_id=show.pk) is False
    assert redis_client().ttl(dispatch.wake_key(show.pk)) > 2
    dispatch.clear_wake_marker(show_id=show.pk)
    assert dispatch.wake_show(show_id=show.pk) is True


def test_a_failed_publish_lets_the_marker_lapse_soon(show, unreachable_broker):
    assert dispatch.wake_show(show_id=show.pk) is False  # never raises: the row is committed
    ttl_ms = redis_client().pttl(dispatch.wake_key(show.pk))
    # Still there (a burst of bookings does not hammer a dead broker), but only briefly:
    # a later booking publishes again instead of waiting for the recovery job.
    assert 0 < ttl_ms <= dispatch.WAKE_MARKER_AFTER_FAILED_PUBLISH_MS
