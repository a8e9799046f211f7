"""The decision queue: the whole wake-up protocol of a show's drain, in one place.

To wake a show is to publish the decider task (by name, so core never imports the workers)
asking some worker to drain the show's pending bookings. A booking only needs some worker to
drain its show after it was committed. One message per booking would make most tasks find
the show's lock taken and retry, so a marker key records that a wake-up is queued or a drain
is running; bookings that find it set rely on that drain. The drainer clears the marker
before its final look for pending bookings, so a booking committed after that look wakes the
show again. A drain that stops with bookings left (its turn or its time is up) hands the
show off, keeping the marker. The marker expires on its own, and the recovery job, which
wakes shows through the marker too, wakes anything a lost message or a dead worker left
pending.
"""

import contextlib
import logging
import time

from celery import current_app
from django.conf import settings
from redis.exceptions import RedisError

import core.tracing  # noqa: F401 - the request id travels in the headers of every wake-up
from core import broker
from core.context import current_request_id
from core.redis import redis_client

logger = logging.getLogger("core.decision_queue")

# The task that drains a show (workers/tasks.py), published by name.
DRAIN_TASK = "bookings.decide_show"


# How long a wake-up marker outlives a publish that failed (see wake_show).
WAKE_MARKER_AFTER_FAILED_PUBLISH_MS = 2000
# A drain's hand-off is tried this many times, waiting HAND_OFF_BACKOFF_SECONDS, then twice
# that, and so on in between (1.5 s of waiting): a broker that restarts or fails over is
# back by then. No attempt starts after HAND_OFF_SECONDS, however slowly each one fails (a
# frozen broker makes each wait out its socket timeouts), so that the drain lets go of its
# show's lock (renewed just before) well inside the lock's expiry.
HAND_OFF_ATTEMPTS = 5
HAND_OFF_BACKOFF_SECONDS = 0.1
HAND_OFF_SECONDS = 8.0


def wake_key(show_id: int) -> str:
    return f"booking:wake:show:{show_id}"


def wake_show(*, show_id: int, booking_id=None) -> bool:
    """Wake the show unless a wake-up is already queued or its drain is running. Never
    raises: the booking row is committed, and the recovery job wakes it if this one is lost."""
    try:
        if not redis_client().set(wake_key(show_id), 1, nx=True, ex=settings.BOOKING_LOCK_TIMEOUT):
            return False
    except Exception:
        logger.exception("could not queue a decision", extra={"show_id": show_id, "booking_id": str(booking_id)})
        return False
    try:
        send_wake(show_id=show_id, booking_id=booking_id)
        return True
    except Exception:
        logger.exception("could not queue a decision", extra={"show_id": show_id, "booking_id": str(booking_id)})
        # Nothing is queued although the marker says so: let it lapse soon, so that a later
        # booking of the show publishes again instead of waiting for the recovery job, yet
        # a broker outage does not make every booking pay for a failing publish.
        _shorten_marker(show_id)
        return False


def _shorten_marker(show_id: int) -> None:
    with contextlib.suppress(RedisError):  # it expires with its original TTL anyway
        redis_client().pexpire(wake_key(show_id), WAKE_MARKER_AFTER_FAILED_PUBLISH_MS)


def hand_off(*, show_id: int) -> bool:
    """Wake again a show of a show whose drain stops with bookings left (its turn or its
    time is up); its marker stays set, since a wake-up is queued again. Never raises: a
    broker that refuses every attempt leaves the marker to lapse, so that the show's next
    booking, or else the recovery job, queues it."""
    started = time.monotonic()
    for attempt in range(HAND_OFF_ATTEMPTS):
        try:
            send_wake(show_id=show_id)
            return True
        except Exception:
            delay = HAND_OFF_BACKOFF_SECONDS * 2**attempt
            if attempt == HAND_OFF_ATTEMPTS - 1 or time.monotonic() + delay - started > HAND_OFF_SECONDS:
                logger.exception("could not hand the show off", extra={"show_id": show_id})
                break
            logger.warning("hand-off failed; trying again", exc_info=True, extra={"show_id": show_id})
            time.sleep(delay)
    _shorten_marker(show_id)
    return False


def send_wake(*, show_id: int, booking_id=None) -> None:
    """Wake the show unconditionally (the marker is the caller's business)."""
    kwargs = {"booking_id": str(booking_id) if booking_id else None}
    current_app.send_task(
        DRAIN_TASK,
        args=[show_id],
        kwargs=kwargs,
        # The show's bookings queue, one of those wakeups_queued() counts (its retries
        # follow it there through the router, core/broker.py).
        queue=bookings_queue(show_id),
        # What Flower shows and searches (`kwargs:booking_id=<id>`, `kwargs:request_id=<id>`):
        # the arguments, plus the id of the request that queued the wake-up, which also
        # travels in the message headers (core/tracing.py).
        argsrepr=repr([show_id]),
        kwargsrepr=repr({**kwargs, "request_id": current_request_id()}),
        retry=True,
        retry_policy=settings.CELERY_PUBLISH_RETRY_POLICY,
    )


def warm_publisher() -> None:
    """Load the tasks and open the producer pool's broker connection and the Redis client's,
    so that a web process's first wake-up costs what every later one does (gunicorn's
    post_worker_init calls this)."""
    with current_app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1)
        producer.channel  # noqa: B018 - opening the channel connects to the broker
    redis_client().ping()


def bookings_queues() -> list[str]:
    return broker.booking_queues()


def bookings_queue(show_id: int) -> str:
    return broker.booking_queue_for(show_id)


def wakeups_queued() -> bool:
    """Whether a wake-up waits in a bookings queue (a passive declare: the broker's count)."""
    with current_app.connection_or_acquire() as conn:
        return any(broker.message_counts(conn, bookings_queues()).values())


def queue_lengths(queues, *, timeout: float) -> dict[str, int]:
    """Messages waiting in each of `queues` (the /metrics gauge); raises when the broker is down."""
    with current_app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
        return broker.message_counts(conn, list(queues))


def check_broker(*, timeout: float) -> None:
    """Raise unless the broker accepts a connection (readiness)."""
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)


def keep_wake_marker(*, show_id: int) -> None:
    redis_client().set(wake_key(show_id), 1, ex=settings.BOOKING_LOCK_TIMEOUT)


def clear_wake_marker(*, show_id: int) -> None:
    try:
        redis_client().delete(wake_key(show_id))
    except RedisError:
        # The marker expires by itself; the drainer's final look still runs.
        logger.warning("could not clear the wake-up marker", extra={"show_id": show_id})
