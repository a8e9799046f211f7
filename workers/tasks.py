"""Thin Celery tasks: take ids, take the show's lock, call core services, decide about retrying."""

import logging
import random
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from redis.exceptions import LockError, RedisError

from core import db_errors, metrics, selectors
from core.redis import redis_client
from core.services.bookings import (
    TRANSIENT_ERRORS,
    booking_decide_next,
    bookings_expire_started,
)
from workers import broker
from workers.dispatch import clear_wake_marker, hand_off, keep_wake_marker, wake_show, wakeups_queued
from workers.locks import show_lock, show_lock_held

logger = logging.getLogger("workers.tasks")

# Retries of a busy lock or a dependency outage back off exponentially with jitter; the
# longest wait stays far below the broker's visibility timeout (see settings).
RETRY_BASE_SECONDS = 0.05
RETRY_CAP_SECONDS = 5.0
MAX_RETRIES = 60


def retry_delay(retries: int) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * (2**retries))
    return broker.retry_countdown(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 - jitter


class _LockLost(Exception):
    pass


@shared_task(name="bookings.decide_show", bind=True, max_retries=MAX_RETRIES)
def decide_show(self, show_id: int, booking_id: str | None = None) -> int:
    """Decide every pending booking of one show, oldest accepted first, under its lock.

    `booking_id` names the booking whose acceptance queued this wake-up (for operators);
    the drain decides it along with everything else pending. Returns how many bookings
    this run decided; 0 when someone else's drain already decided them (a no-op).
    """
    lock = show_lock(show_id)
    try:
        if not lock.acquire():
            # Another process drains this show; it will most likely decide our booking
            # too, and this retry then finds nothing left to do.
            metrics.LOCK_BUSY.inc()
            metrics.TASK_RETRIES.labels(reason="lock_busy").inc()
            raise self.retry(countdown=retry_delay(self.request.retries))
        try:
            decided = _drain(show_id=show_id, lock=lock)
        finally:
            _release(lock)
    except (RedisError, *TRANSIENT_ERRORS) as exc:
        # An outage, or contention (a lock timeout or deadlock): either way the drain is
        # retried and no booking is blamed (booking_decide_next never counts these).
        reason = "contention" if db_errors.is_contention(exc) else "dependency"
        logger.warning("decision deferred (%s): %s", reason, exc, extra={"show_id": show_id})
        metrics.TASK_RETRIES.labels(reason=reason).inc()
        raise self.retry(exc=exc, countdown=retry_delay(self.request.retries)) from exc
    logger.info("show drained", extra={"show_id": show_id, "booking_id": booking_id, "decided": decided})
    return decided


def _drain(*, show_id: int, lock) -> int:
    started = time.monotonic()
    # Hand the show to a fresh task well before the soft time limit could interrupt a batch.
    deadline = started + settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    turn_ends = started + settings.BOOKING_DRAIN_TURN_SECONDS
    decided = 0
    while True:
        while batch := booking_decide_next(show_id=show_id, propagate=(SoftTimeLimitExceeded,)):
            decided += len(batch)
            try:
                # Keep the lock and the wake-up marker alive while there is work left.
                lock.reacquire()
            except LockError:
                logger.warning("show lock expired during the drain", extra={"show_id": show_id})
                metrics.LOCK_LOST.inc()
                return decided
            keep_wake_marker(show_id=show_id)
            if _time_is_up(deadline=deadline, turn_ends=turn_ends):
                # The show's next turn queues behind the wake-ups already waiting; its
                # bookings stay pending, in order, for whichever drain takes it next.
                hand_off(show_id=show_id)
                return decided
            if len(batch) < settings.BOOKING_DECIDE_BATCH:
                # A short batch took everything that was pending: go straight to the final
                # look below instead of opening one more transaction to find nothing.
                break
        if _more_soon(show_id=show_id):
            continue
        # Clear the marker, then look once more: a booking committed before the clear
        # relied on this drain and is seen now; one committed after it queues its own.
        clear_wake_marker(show_id=show_id)
        if not selectors.booking_pending_exists(show_id=show_id):
            return decided
        keep_wake_marker(show_id=show_id)


def _time_is_up(*, deadline: float, turn_ends: float) -> bool:
    """Past the deadline, or past the turn while another show's wake-up waits."""
    now = time.monotonic()
    if now > deadline:
        return True
    if now <= turn_ends:
        return False
    try:
        return wakeups_queued()
    except Exception:
        # Cannot tell: keep draining (the deadline still bounds the task).
        logger.warning("could not read the bookings queue", exc_info=True)
        return False


# Long enough that a sale's bookings gather into batches (each batch reads the show's held
# seats again: on the benchmark 50 ms took a quarter less worker CPU per booking than
# 25 ms), short beside the one-second polling interval clients are given.
LINGER_STEP_SECONDS = 0.05


def _more_soon(*, show_id: int) -> bool:
    """Wait up to BOOKING_DRAIN_LINGER_MS for another pending booking of the show, keeping
    the lock and the wake-up marker meanwhile; True if one came. Skipped when another
    wake-up is queued, so that a lingering drain never keeps a different show waiting."""
    linger = settings.BOOKING_DRAIN_LINGER_MS / 1000
    if linger <= 0 or wakeups_queued():
        return False
    deadline = time.monotonic() + linger
    while time.monotonic() < deadline:
        time.sleep(LINGER_STEP_SECONDS)
        if selectors.booking_pending_exists(show_id=show_id):
            return True
    return False


def _release(lock) -> None:
    try:
        lock.release()
    except LockError:
        # Expired meanwhile (and maybe taken by another worker): nothing of ours to release.
        pass
    except RedisError:
        logger.warning("could not release a show lock; it expires by itself")


@shared_task(name="maintenance.recover_pending_bookings", ignore_result=True)
def recover_pending_bookings() -> int:
    """Re-queue shows whose bookings are still pending after the grace period.

    Their wake-up was lost with Redis, or the worker holding it died. Bookings of shows that
    have started are failed instead. Safe to run anywhere and often: a short Redis marker
    keeps concurrent beat instances from sweeping together, and a show is queued through
    its wake-up marker like any submission, so a show whose wake-up waits in a long queue
    (or whose drain runs) is not queued again by every sweep. Returns how many shows were
    re-queued.
    """
    interval = settings.BOOKING_RECOVERY_INTERVAL_SECONDS
    if not redis_client().set("booking:recovery-sweep", 1, nx=True, px=max(1, int(interval * 900))):
        return 0
    bookings_expire_started()
    requeued = 0
    for show_id in selectors.bookings_overdue_show_ids(older_than_seconds=settings.BOOKING_RECOVERY_GRACE_SECONDS):
        if show_lock_held(show_id):
            continue  # a drain is running and will get to them
        if wake_show(show_id=show_id):
            requeued += 1
    if requeued:
        metrics.RECOVERY_REQUEUES.inc(requeued)
        logger.warning("re-queued overdue pending bookings", extra={"shows": requeued})
    return requeued
