"""Queueing wake-ups: at most one per show, the show ready in its queue's ready set, and a
failed publish does not strand the show."""

import pytest

from core import decision_queue as dispatch
from core.redis import redis_client
from tests.harness.service import broker_at

pytestmark = pytest.mark.django_db

DEAD_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def unreachable_broker():
    """The Celery app publishes to a closed local port (a real, refused connection)."""
    with broker_at(DEAD_BROKER):
        yield


def test_one_wake_up_per_show_while_one_is_pending(show):
    assert dispatch.wake_show(show_id=show.pk) is True
    assert dispatch.wake_show(show_id=show.pk) is False
    assert redis_client().ttl(dispatch.wake_key(show.pk)) > 2
    dispatch.clear_wake_marker(show_id=show.pk)
    assert dispatch.wake_show(show_id=show.pk) is True


def test_a_woken_show_is_ready_in_its_queue_once(show):
    queue = dispatch.bookings_queue(show.pk)
    ready = dispatch.ready_key(queue)
    assert dispatch.wake_show(show_id=show.pk) is True
    assert redis_client().zrange(ready, 0, -1) == [str(show.pk).encode()]
    first = redis_client().zscore(ready, show.pk)
    dispatch.clear_wake_marker(show_id=show.pk)
    assert dispatch.wake_show(show_id=show.pk) is True
    # Still once, and still in its place in the line.
    assert redis_client().zrange(ready, 0, -1) == [str(show.pk).encode()]
    assert redis_client().zscore(ready, show.pk) == first


def test_a_failed_publish_lets_the_marker_lapse_soon(show, unreachable_broker):
    assert dispatch.wake_show(show_id=show.pk) is False  # never raises: the row is committed
    ttl_ms = redis_client().pttl(dispatch.wake_key(show.pk))
    # Still there (a burst of bookings does not hammer a dead broker), but only briefly:
    # a later booking publishes again instead of waiting for the recovery job.
    assert 0 < ttl_ms <= dispatch.WAKE_MARKER_AFTER_FAILED_PUBLISH_MS
