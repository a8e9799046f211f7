"""The decision queue: the whole wake-up protocol of the drains, in one place.

Every bookings queue (core/broker.py: one, or one per shard of shows) has a ready set in
Redis: a sorted set of the shows of that queue with work to do, each scored with the time
from which a drain may claim it. To wake a show is to put it in its queue's ready set and
publish the decider task (by name, so core never imports the workers) to that queue; the
task is a drain that serves every ready show of the queue in turn, one batch per show per
turn, oldest ready first (core/services/drain.py). A claim hides the show from the other
drains for a lease (BOOKING_LOCK_TIMEOUT, renewed with every batch, like the show's lock),
so that two drains never take turns on one show at once and a show whose drain died becomes
claimable again once the lease lapses. The show's Redis lock and its PostgreSQL row lock
still make its decisions serial; the ready set only says whose turn it is.

A booking only needs some drain to serve its show after it was committed. A marker key per
show records that the show is ready or being served, so that a booking that finds it set
wakes nothing and relies on that. The drain clears the marker before its final look for
pending bookings, so a booking committed after that look wakes the show again; one committed
in between finds the show still in the ready set, which the drain then leaves claimable
(show_finish). A drain that stops with shows still ready (its time is up) hands its queue
off. The markers expire on their own, and the recovery job, which wakes shows through the
marker too, wakes anything a lost message or a dead worker left pending. The times in the
ready set are Redis's own clock (TIME in the scripts), so that drains on several hosts agree.
"""

import contextlib
import logging
import time
from typing import Any

from celery import current_app
from django.conf import settings
from redis.exceptions import RedisError

import core.tracing  # noqa: F401 - the request id travels in the headers of every wake-up
from core import broker
from core.context import current_request_id
from core.redis import redis_client
from core.show_lock import show_lock_key

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


def wake_key(show_id: int | str) -> str:
    return f"booking:wake:show:{show_id}"


def ready_key(queue: str) -> str:
    return f"booking:ready:{queue}"


# The scripts keep the marker and the ready set consistent (each runs atomically in Redis).
# `now` is Redis's clock in milliseconds.
_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
_SCRIPTS = {
    # Mark the show and make it ready, unless it was marked already; 1 if it was not.
    "wake": _NOW
    + """
        if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) then return 0 end
        redis.call('ZADD', KEYS[2], 'NX', now, ARGV[2])
        return 1""",
    # Mark the show and make it ready (now) if it is not in the ready set.
    "schedule": _NOW
    + """
        redis.call('SET', KEYS[1], 1, 'EX', ARGV[1])
        redis.call('ZADD', KEYS[2], 'NX', now, ARGV[2])""",
    # The show ready longest, hidden from the other drains for the lease, and how many
    # others are ready; nil if none is.
    "claim": _NOW
    + """
        local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
        if #ids == 0 then return false end
        redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ids[1])
        return {ids[1], redis.call('ZCOUNT', KEYS[1], '-inf', now)}""",
    # Up to ARGV[2] of the shows ready longest, each claimed for the lease (ARGV[1] ms) if
    # its lock (key prefix ARGV[5]) can be taken for this drain's token (ARGV[4]) for
    # ARGV[3] ms, else made ready again at the back of the line; the markers (prefix ARGV[6])
    # of the claimed shows cleared when they are several (as a drain clears a show's marker
    # before the batch of its turn: core/services/drain.py). Returns {claimed, busy, how
    # many are ready after}, or nil. The lock and marker keys are built here from their
    # prefixes, so the script's keys are not all declared: one Redis, never a cluster.
    "claim_many": _NOW
    + """
        local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
        if #ids == 0 then return false end
        local claimed, busy = {}, {}
        for _, id in ipairs(ids) do
            if redis.call('SET', ARGV[5] .. id, ARGV[4], 'NX', 'PX', ARGV[3]) then
                redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), id)
                claimed[#claimed + 1] = id
            else
                redis.call('ZADD', KEYS[1], 'XX', now, id)
                busy[#busy + 1] = id
            end
        end
        if #claimed > 1 then
            for _, id in ipairs(claimed) do redis.call('DEL', ARGV[6] .. id) end
        end
        return {claimed, busy, redis.call('ZCOUNT', KEYS[1], '-inf', now)}""",
    # The end of a turn of several shows: each show's lock (prefix ARGV[2]) released if it
    # still holds this drain's token (ARGV[1]), then the first ARGV[4] of the shows ready
    # again at the back of the line, the others finished as by "finish" (marker prefix
    # ARGV[3]).
    "settle": _NOW
    + """
        local requeued = tonumber(ARGV[4])
        for i = 5, #ARGV do
            local id = ARGV[i]
            if redis.call('GET', ARGV[2] .. id) == ARGV[1] then redis.call('DEL', ARGV[2] .. id) end
            if i - 4 <= requeued or redis.call('EXISTS', ARGV[3] .. id) == 1 then
                redis.call('ZADD', KEYS[1], now, id)
            else
                redis.call('ZREM', KEYS[1], id)
            end
        end""",
    # How many shows are ready now (claimable).
    "ready": _NOW + "return redis.call('ZCOUNT', KEYS[1], '-inf', now)",
    # Ready again, at the back of the queue's line.
    "requeue": _NOW + "redis.call('ZADD', KEYS[1], now, ARGV[1])",
    # The claim and the marker renewed (a drain that goes on with the show).
    "renew": _NOW
    + """
        redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[2]), ARGV[1])
        redis.call('SET', KEYS[1], 1, 'EX', ARGV[3])""",
    # The drain is done with the show: out of the ready set, unless a booking marked it again
    # after the drain cleared the marker (its final look may have missed that booking).
    "finish": _NOW
    + """
        if redis.call('EXISTS', KEYS[1]) == 1 then
            redis.call('ZADD', KEYS[2], now, ARGV[1])
            return 1
        end
        redis.call('ZREM', KEYS[2], ARGV[1])
        return 0""",
}
_registered: dict[str, tuple[Any, Any]] = {}


def _script(name: str, keys: list[str], args: list) -> Any:
    client = redis_client()
    cached = _registered.get(name)
    if cached is None or cached[0] is not client:
        cached = (client, client.register_script(_SCRIPTS[name]))
        _registered[name] = cached
    return cached[1](keys=keys, args=args)


def _lease_ms() -> int:
    return settings.BOOKING_LOCK_TIMEOUT * 1000


def wake_show(*, show_id: int, booking_id=None) -> bool:
    """Wake the show unless it is ready or being served already. Never raises: the booking
    row is committed, and the recovery job wakes it if this one is lost."""
    try:
        keys = [wake_key(show_id), ready_key(bookings_queue(show_id))]
        if not _script("wake", keys, [settings.BOOKING_LOCK_TIMEOUT, show_id]):
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
    """Publish a wake-up to the queue of a show whose drain stops while shows of that queue
    are ready (its time is up); the show's marker stays set, since a wake-up is queued
    again. Never raises: a broker that refuses every attempt leaves the marker to lapse, so
    that the show's next booking, or else the recovery job, queues it."""
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


def wakeups_queued(*, excluding: str | None = None) -> bool:
    """Whether a wake-up waits in a bookings queue, or in one but `excluding` (a passive
    declare: the broker's count)."""
    queues = [queue for queue in bookings_queues() if queue != excluding]
    if not queues:
        return False
    with current_app.connection_or_acquire() as conn:
        return any(broker.message_counts(conn, queues).values())


def queue_lengths(queues, *, timeout: float) -> dict[str, int]:
    """Messages waiting in each of `queues` (the /metrics gauge); raises when the broker is down."""
    with current_app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
        return broker.message_counts(conn, list(queues))


def check_broker(*, timeout: float) -> None:
    """Raise unless the broker accepts a connection (readiness)."""
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)


# ---- the ready sets: whose turn it is (core/services/drain.py serves them) ----------------


def show_is_scheduled(*, show_id: int) -> bool:
    """Whether the show is in its queue's ready set (ready, or claimed by a drain)."""
    return redis_client().zscore(ready_key(bookings_queue(show_id)), show_id) is not None


def show_schedule(*, show_id: int) -> None:
    """Mark the show and make it ready, unless it is in the ready set already (a wake-up
    whose show has pending bookings nobody serves: lost from the ready set with Redis, or
    written without a wake-up)."""
    keys = [wake_key(show_id), ready_key(bookings_queue(show_id))]
    _script("schedule", keys, [settings.BOOKING_LOCK_TIMEOUT, show_id])


def show_claim_next(*, queue: str) -> tuple[int, bool] | None:
    """The show of `queue` ready longest, claimed for this drain (hidden from the others for
    a lease), and whether other shows are ready; None when no show is ready."""
    claimed = _script("claim", [ready_key(queue)], [_lease_ms()])
    if claimed is None:
        return None
    show_id, others = claimed
    return int(show_id), int(others) > 0


def shows_claim(*, queue: str, limit: int, token: str) -> tuple[list[int], list[int], bool] | None:
    """Up to `limit` shows of `queue` ready longest, in one round trip: those whose Redis
    lock (core/show_lock.py) it could take with `token` are claimed for this drain, the
    others (busy: another process holds the lock) made ready again at the back of the line.
    Returns (claimed, busy, whether shows are ready after), or None when no show is ready.

    When it claims several, their markers are cleared, as a drain does before the batch of
    a show's turn while other shows are ready."""
    claimed = _script(
        "claim_many",
        [ready_key(queue)],
        [_lease_ms(), limit, _lease_ms(), token, show_lock_key(""), wake_key("")],
    )
    if claimed is None:
        return None
    shows, busy, ready = claimed
    return [int(show_id) for show_id in shows], [int(show_id) for show_id in busy], int(ready) > 0


def shows_settle(*, queue: str, token: str, requeue: list[int], finish: list[int]) -> None:
    """End a turn of several shows claimed by shows_claim, in one round trip: release their
    locks (those still held with `token`), make the `requeue` shows ready again at the back
    of the line and take the `finish` shows out of the ready set as show_finish does."""
    _script("settle", [ready_key(queue)], [token, show_lock_key(""), wake_key(""), len(requeue), *requeue, *finish])


def shows_ready(*, queue: str) -> int:
    """How many shows of `queue` are ready, not counting those claimed by a drain."""
    return int(_script("ready", [ready_key(queue)], []))


def show_renew_claim(*, show_id: int) -> None:
    """Extend the drain's claim on the show and the show's marker (with every batch)."""
    keys = [wake_key(show_id), ready_key(bookings_queue(show_id))]
    _script("renew", keys, [show_id, _lease_ms(), settings.BOOKING_LOCK_TIMEOUT])


def show_requeue(*, show_id: int) -> None:
    """Make the show ready again, at the back of its queue's line (a show with bookings left
    after its turn, or whose lock was taken)."""
    _script("requeue", [ready_key(bookings_queue(show_id))], [show_id])


def show_finish(*, show_id: int) -> bool:
    """Take the show out of the ready set once its drain found nothing pending after clearing
    the marker; unless a booking marked it again meanwhile: then it is made ready at once
    (True), since the drain's final look may have missed that booking."""
    keys = [wake_key(show_id), ready_key(bookings_queue(show_id))]
    return bool(_script("finish", keys, [show_id]))


def clear_wake_marker(*, show_id: int) -> None:
    try:
        redis_client().delete(wake_key(show_id))
    except RedisError:
        # The marker expires by itself; the drainer's final look still runs.
        logger.warning("could not clear the wake-up marker", extra={"show_id": show_id})
