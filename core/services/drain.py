"""Draining a show: deciding its pending bookings, batch after batch, under its lock.

A drain holds the show's Redis lock (core/show_lock.py) and the wake-up marker
(core/decision_queue.py) while it works. It stops when nothing of the show is pending, when
its turn is up while another show's wake-up waits, or at its deadline (well before the task's
soft time limit could interrupt a batch); a drain that stops with bookings left hands the
show off. The recovery sweep wakes whatever a lost wake-up or a dead worker left pending.
"""

import logging
import time

from django.conf import settings
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from core import decision_queue, metrics, selectors
from core.redis import redis_client
from core.services.cancellation import bookings_expire_started
from core.services.decisions import booking_decide_next
from core.show_lock import show_lock, show_lock_held

logger = logging.getLogger("core.drain")

# Long enough that a sale's bookings gather into batches (each batch reads the show's held
# seats again), short beside the one-second polling interval clients are given.
LINGER_STEP_SECONDS = 0.05


class ShowBusy(Exception):
    """Another process drains this show right now; the caller retries later."""


def drain_show(*, show_id: int, propagate: tuple[type[BaseException], ...] = ()) -> int:
    """Decide every pending booking of one show, oldest accepted first, under its lock.

    Returns how many bookings this drain decided; 0 when another drain already decided them.
    Raises ShowBusy when the show's lock is taken, and lets Redis and database outages or
    contention through (core.db_errors): the caller retries, no booking is blamed. The
    `propagate` types are re-raised from inside a decision (see booking_decide_next).
    """
    lock = show_lock(show_id)
    if not lock.acquire():
        metrics.LOCK_BUSY.inc()
        raise ShowBusy(show_id)
    try:
        return _drain(show_id=show_id, lock=lock, propagate=propagate)
    finally:
        _release(lock)


def _drain(*, show_id: int, lock: Lock, propagate: tuple[type[BaseException], ...]) -> int:
    started = time.monotonic()
    deadline = started + settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    turn_ends = started + settings.BOOKING_DRAIN_TURN_SECONDS
    decided = 0
    while True:
        while batch := booking_decide_next(show_id=show_id, propagate=propagate):
            decided += len(batch)
            try:
                # Keep the lock and the wake-up marker alive while there is work left.
                lock.reacquire()
            except LockError:
                logger.warning("show lock expired during the drain", extra={"show_id": show_id})
                metrics.LOCK_LOST.inc()
                return decided
            decision_queue.keep_wake_marker(show_id=show_id)
            if _time_is_up(deadline=deadline, turn_ends=turn_ends):
                # The show's next turn queues behind the wake-ups already waiting; its
                # bookings stay pending, in order, for whichever drain takes it next.
                decision_queue.hand_off(show_id=show_id)
                return decided
            if len(batch) < settings.BOOKING_DECIDE_BATCH:
                # A short batch took everything that was pending: go straight to the final
                # look below instead of opening one more transaction to find nothing.
                break
        if _more_soon(show_id=show_id):
            continue
        # Clear the marker, then look once more: a booking committed before the clear
        # relied on this drain and is seen now; one committed after it wakes the show again.
        decision_queue.clear_wake_marker(show_id=show_id)
        if not selectors.booking_pending_exists(show_id=show_id):
            return decided
        decision_queue.keep_wake_marker(show_id=show_id)


def _time_is_up(*, deadline: float, turn_ends: float) -> bool:
    """Past the deadline, or past the turn while another show's wake-up waits."""
    now = time.monotonic()
    if now > deadline:
        return True
    if now <= turn_ends:
        return False
    try:
        return decision_queue.wakeups_queued()
    except Exception:
        # Cannot tell: keep draining (the deadline still bounds the drain).
        logger.warning("could not read the bookings queue", exc_info=True)
        return False


def _more_soon(*, show_id: int) -> bool:
    """Wait up to BOOKING_DRAIN_LINGER_MS for another pending booking of the show, keeping
    the lock and the wake-up marker meanwhile; True if one came. Skipped when another
    wake-up is queued, so that a lingering drain never keeps a different show waiting."""
    linger = settings.BOOKING_DRAIN_LINGER_MS / 1000
    if linger <= 0 or decision_queue.wakeups_queued():
        return False
    deadline = time.monotonic() + linger
    while time.monotonic() < deadline:
        time.sleep(LINGER_STEP_SECONDS)
        if selectors.booking_pending_exists(show_id=show_id):
            return True
    return False


def _release(lock: Lock) -> None:
    try:
        lock.release()
    except LockError:
        # Expired meanwhile (and maybe taken by another worker): nothing of ours to release.
        pass
    except RedisError:
        logger.warning("could not release a show lock; it expires by itself")


def recover_overdue() -> int:
    """Fail the pending bookings of started shows, and wake the shows whose bookings are
    still pending after the grace period (their wake-up was lost with Redis, or the worker
    holding it died). Returns how many shows were woken.

    Safe to run anywhere and often: a short Redis marker keeps concurrent sweeps apart, and
    a show is woken through its wake-up marker like any submission, so a show whose wake-up
    waits in a long queue (or whose drain runs) is not woken again by every sweep.
    """
    interval = settings.BOOKING_RECOVERY_INTERVAL_SECONDS
    if not redis_client().set("booking:recovery-sweep", 1, nx=True, px=max(1, int(interval * 900))):
        return 0
    bookings_expire_started()
    woken = 0
    for show_id in selectors.bookings_overdue_show_ids(older_than_seconds=settings.BOOKING_RECOVERY_GRACE_SECONDS):
        if show_lock_held(show_id):
            continue  # a drain is running and will get to them
        if decision_queue.wake_show(show_id=show_id):
            woken += 1
    if woken:
        metrics.RECOVERY_REQUEUES.inc(woken)
        logger.warning("re-queued overdue pending bookings", extra={"shows": woken})
    return woken
