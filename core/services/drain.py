"""Draining the shows of a bookings queue: one batch per ready show per turn, in turn.

A drain is the decider task woken for a show (core/decision_queue.py). It serves every show
of that show's bookings queue that is ready, not only its own. A turn claims up to
BOOKING_DRAIN_SHOWS_PER_TURN of the shows ready longest and takes their Redis locks
(core/show_lock.py) in one round trip (a show whose lock another process holds goes to the
back of the line), decides one batch of each in ONE transaction (the show rows locked in
PostgreSQL, skipping those another transaction holds; oldest accepted first per show:
bookings_decide_next), then in one more round trip lets go of the locks and puts each show
with bookings left (or skipped) at the back of the line. A turn that claims a single show
decides it alone, as many batches as it has while no other show is ready. So one worker
process serves many shows without a task, or a transaction, per show, and a show fed without
pause gets one batch per turn while every other ready show gets its turn in between. A drain
that runs out of work waits briefly for its last show's next booking
(BOOKING_DRAIN_LINGER_MS), unless another show is ready or waits in another bookings queue.

A drain stops when no show is ready, or at its deadline (well before the task's soft time
limit could interrupt a batch) or after its turn while another bookings queue has a wake-up
waiting (BOOKING_DRAIN_TURN_SECONDS); stopping with shows ready, it hands its queue off. The
recovery sweep wakes whatever a lost wake-up or a dead worker left pending.
"""

import contextlib
import enum
import logging
import time
import uuid

from django.conf import settings
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from core import decision_queue, metrics, selectors
from core.models import Booking
from core.redis import redis_client
from core.services.cancellation import bookings_expire_started
from core.services.decisions import booking_decide_next, bookings_decide_next
from core.show_lock import show_lock, show_lock_held

logger = logging.getLogger("core.drain")

# Long enough that a sale's bookings gather into batches (each batch reads the show's held
# seats again), short beside the one-second polling interval clients are given; a show that
# becomes ready meanwhile waits at most this long for a lingering drain.
LINGER_STEP_SECONDS = 0.025
BROKER_CHECK_STEPS = 4


class ShowBusy(Exception):
    """A ready show's lock is held by another process (a slow, frozen or dead drain whose
    claim lapsed); the show stays ready and the caller retries later."""


class _After(enum.Enum):
    MORE = "bookings left: back of the line"
    DONE = "nothing pending after the marker was cleared"
    LOST = "the show's lock expired under the drain"


def drain_show(*, show_id: int, propagate: tuple[type[BaseException], ...] = ()) -> int:
    """Serve the ready shows of `show_id`'s bookings queue in turn, `show_id` included.

    Returns how many bookings this drain decided; 0 when other drains had decided them.
    Raises ShowBusy when it leaves a ready show it could not lock, and lets Redis and
    database outages or contention through (core.db_errors): the caller retries, no
    booking is blamed. The `propagate` types are re-raised from inside a decision (see
    booking_decide_next).
    """
    queue = decision_queue.bookings_queue(show_id)
    if not decision_queue.show_is_scheduled(show_id=show_id) and selectors.booking_pending_exists(show_id=show_id):
        # Pending and in no ready set (written without a wake-up, or the set was lost with
        # Redis): this wake-up's show is served like any ready one.
        decision_queue.show_schedule(show_id=show_id)
    started = time.monotonic()
    deadline = started + settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    turn_ends = started + settings.BOOKING_DRAIN_TURN_SECONDS
    token = uuid.uuid4().hex
    decided, busy = 0, set[int]()
    while (claimed := decision_queue.shows_claim(queue=queue, limit=_shows_per_turn(), token=token)) is not None:
        shows, busy_now, others_ready = claimed
        if busy_now:
            metrics.LOCK_BUSY.inc(len(busy_now))
        # Round the line and back to a show found locked: this drain has served the others;
        # the show stays ready for the retry (a drain that stopped here without retrying
        # could leave it ready with no drain to claim it).
        round_done = bool(busy & set(busy_now))
        busy.difference_update(shows)
        busy.update(busy_now)
        if len(shows) == 1:
            decided += _serve_one(
                shows[0],
                token=token,
                queue=queue,
                others_ready=others_ready,
                deadline=deadline,
                turn_ends=turn_ends,
                propagate=propagate,
            )
        elif shows:
            served = _serve_several(shows, token=token, queue=queue, propagate=propagate)
            if served is None:
                # Every row was held by other transactions (cancels, a sweep): do not spin.
                time.sleep(LINGER_STEP_SECONDS)
            else:
                decided += served
        if round_done:
            break
        if _time_is_up(deadline=deadline, turn_ends=turn_ends, queue=queue):
            if decision_queue.shows_ready(queue=queue):
                # The queue's next turn waits behind the wake-ups already queued; its shows
                # stay ready, in order, for whichever drain takes it next.
                decision_queue.hand_off(show_id=shows[-1] if shows else show_id)
            return decided
    if busy:
        raise ShowBusy(show_id)
    return decided


def _shows_per_turn() -> int:
    return max(1, settings.BOOKING_DRAIN_SHOWS_PER_TURN)


def _serve_one(
    current: int,
    *,
    token: str,
    queue: str,
    others_ready: bool,
    deadline: float,
    turn_ends: float,
    propagate: tuple[type[BaseException], ...],
) -> int:
    """The turn of the one show claimed (its lock taken with `token`): see _serve."""
    lock = show_lock(current)
    lock.local.token = token.encode()
    try:
        count, after = _serve(
            current,
            lock=lock,
            queue=queue,
            others_ready=others_ready,
            deadline=deadline,
            turn_ends=turn_ends,
            propagate=propagate,
        )
    except BaseException:
        # An outage, contention or the time limit: the caller retries later, and the
        # show is claimable again meanwhile (not only once the claim lapses).
        _release(lock)
        with contextlib.suppress(RedisError):
            decision_queue.show_requeue(show_id=current)
        raise
    # Let go of the lock before the show is claimable again, so that the next drain to
    # claim it finds the lock free.
    _release(lock)
    if after is _After.MORE:
        decision_queue.show_requeue(show_id=current)
    elif after is _After.DONE:
        decision_queue.show_finish(show_id=current)
    return count


def _serve_several(
    shows: list[int], *, token: str, queue: str, propagate: tuple[type[BaseException], ...]
) -> int | None:
    """One turn of several claimed and locked shows (their markers cleared by the claim):
    one batch each, all in one transaction (bookings_decide_next). A show whose batch was
    full goes to the back of the line, as does one whose row another transaction held (it
    was skipped) or whose oldest booking is still pending after a failed attempt; the others
    are finished. Returns how many it decided, or None if it could lock no show's row."""
    try:
        batches = bookings_decide_next(show_ids=shows, propagate=propagate)
    except BaseException:
        with contextlib.suppress(RedisError):
            decision_queue.shows_settle(queue=queue, token=token, requeue=shows, finish=[])
        raise
    finished = [show_id for show_id in shows if show_id in batches and _finished(batches[show_id])]
    decision_queue.shows_settle(
        queue=queue, token=token, requeue=[show_id for show_id in shows if show_id not in finished], finish=finished
    )
    if not batches:
        return None
    return sum(len(batch) for batch in batches.values())


def _finished(batch: list[Booking]) -> bool:
    """Whether a turn's batch took everything that was pending when the marker was cleared."""
    return len(batch) < settings.BOOKING_DECIDE_BATCH and all(b.status != Booking.Status.PENDING for b in batch)


def _serve(
    show_id: int,
    *,
    lock: Lock,
    queue: str,
    others_ready: bool,
    deadline: float,
    turn_ends: float,
    propagate: tuple[type[BaseException], ...],
) -> tuple[int, _After]:
    """One turn of a claimed and locked show: one batch while other shows are ready, more
    while none is. Returns how many it decided and what becomes of the show."""
    decided = 0
    while True:
        if others_ready:
            # This batch is the show's turn. Clear the marker before it rather than after:
            # a booking committed before the clear relied on this drain and is in the batch
            # (unless the batch is full, and then the show comes back); one committed after
            # it wakes the show again. That saves a final look after a short batch.
            decision_queue.clear_wake_marker(show_id=show_id)
        batch = booking_decide_next(show_id=show_id, propagate=propagate)
        decided += len(batch)
        if others_ready and _finished(batch):
            return decided, _After.DONE
        if batch:
            try:
                # Keep the lock, the claim and the marker alive while there is work left.
                lock.reacquire()
            except LockError:
                logger.warning("show lock expired during the drain", extra={"show_id": show_id})
                metrics.LOCK_LOST.inc()
                return decided, _After.LOST
            decision_queue.show_renew_claim(show_id=show_id)
        if len(batch) == settings.BOOKING_DECIDE_BATCH:
            # A full batch: more is probably pending. Others ready go first.
            others_ready = bool(decision_queue.shows_ready(queue=queue))
            if others_ready or _time_is_up(deadline=deadline, turn_ends=turn_ends, queue=queue):
                return decided, _After.MORE
            continue
        # A short batch took everything that was pending: wait briefly for more.
        if _more_soon(show_id=show_id, queue=queue):
            others_ready = False
            continue
        # Clear the marker, then look once more: a booking committed before the clear
        # relied on this drain and is seen now; one committed after it wakes the show again
        # (or, if the show is still in the ready set, makes show_finish leave it ready).
        decision_queue.clear_wake_marker(show_id=show_id)
        if not selectors.booking_pending_exists(show_id=show_id):
            return decided, _After.DONE
        decision_queue.show_renew_claim(show_id=show_id)
        others_ready = bool(decision_queue.shows_ready(queue=queue))
        if others_ready:
            return decided, _After.MORE


def _time_is_up(*, deadline: float, turn_ends: float, queue: str) -> bool:
    """Past the deadline, or past the turn while another bookings queue's wake-up waits."""
    now = time.monotonic()
    if now > deadline:
        return True
    if now <= turn_ends:
        return False
    try:
        return decision_queue.wakeups_queued(excluding=queue)
    except Exception:
        # Cannot tell: keep draining (the deadline still bounds the drain).
        logger.warning("could not read the bookings queues", exc_info=True)
        return False


def _other_work(*, queue: str, broker: bool = True) -> bool:
    """Whether another show is ready in `queue`, or (`broker`) a wake-up waits in another
    bookings queue."""
    if decision_queue.shows_ready(queue=queue):
        return True
    if not broker:
        return False
    try:
        return decision_queue.wakeups_queued(excluding=queue)
    except Exception:
        logger.warning("could not read the bookings queues", exc_info=True)
        return True  # do not linger blind


def _more_soon(*, show_id: int, queue: str) -> bool:
    """Wait up to BOOKING_DRAIN_LINGER_MS for another pending booking of the show, keeping
    its lock, claim and marker meanwhile; True if one came. Skipped, and cut short, as soon
    as another show is ready or another queue's wake-up waits, so that a lingering drain
    never keeps a different show waiting."""
    linger = settings.BOOKING_DRAIN_LINGER_MS / 1000
    if linger <= 0 or _other_work(queue=queue):
        return False
    deadline = time.monotonic() + linger
    steps = 0
    while time.monotonic() < deadline:
        time.sleep(LINGER_STEP_SECONDS)
        steps += 1
        if selectors.booking_pending_exists(show_id=show_id):
            return True
        # The ready set (Redis) every step; the other queues' depths (a passive declare per
        # queue, a channel each on RabbitMQ) every BROKER_CHECK_STEPS.
        if _other_work(queue=queue, broker=steps % BROKER_CHECK_STEPS == 0):
            return False
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
