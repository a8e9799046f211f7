"""Celery tasks: take ids, call core, decide about retrying."""

import logging
import random

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import RedisError

from core import broker, db_errors, metrics
from core.decision_queue import DRAIN_TASK
from core.services import partner_events
from core.services.drain import ShowBusy, drain_show, recover_overdue

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


@shared_task(name=DRAIN_TASK, bind=True, max_retries=MAX_RETRIES)
def decide_show(self, show_id: int, booking_id: str | None = None) -> int:
    """Drain the ready shows of `show_id`'s bookings queue in turn (core.services.drain),
    `show_id` included. `booking_id` names the booking whose acceptance woke the show (for
    operators); the drain decides it along with everything else pending. Returns how many
    bookings this run decided."""
    try:
        decided = drain_show(show_id=show_id, propagate=(SoftTimeLimitExceeded,))
    except ShowBusy:
        # A ready show's lock is held by another process (a slow, frozen or dead drain
        # whose claim lapsed): try again once it has let go or its lock has expired.
        metrics.TASK_RETRIES.labels(reason="lock_busy").inc()
        raise self.retry(countdown=retry_delay(self.request.retries)) from None
    except Exception as exc:
        failure = db_errors.classify(exc)
        if failure is None and not isinstance(exc, RedisError):
            raise
        # An outage, or contention (a lock timeout or deadlock): either way the drain is
        # retried and no booking is blamed (booking_decide_next never counts these).
        reason = "contention" if failure in db_errors.CONTENTION else "dependency"
        logger.warning("decision deferred (%s): %s", reason, exc, extra={"show_id": show_id})
        metrics.TASK_RETRIES.labels(reason=reason).inc()
        raise self.retry(exc=exc, countdown=retry_delay(self.request.retries)) from exc
    logger.info("show drained", extra={"show_id": show_id, "booking_id": booking_id, "decided": decided})
    return decided


@shared_task(name="maintenance.recover_pending_bookings", ignore_result=True)
def recover_pending_bookings() -> int:
    """The recovery sweep (core.services.drain.recover_overdue); returns the shows woken."""
    return recover_overdue()


@shared_task(name=partner_events.DISPATCH_TASK, ignore_result=True)
def dispatch_partner_webhooks() -> int:
    """Queue a delivery task for every partner webhook delivery that may go now (on commit
    of new events, and beat's periodic sweep); returns how many."""
    return partner_events.webhook_dispatch()


@shared_task(name=partner_events.DELIVER_TASK, bind=True, max_retries=None, ignore_result=True)
def deliver_partner_webhook(self, delivery_id: int) -> bool:
    """Attempt one delivery (core.services.partner_events.webhook_deliver). A failure is
    retried by Celery after the service's backoff (the database says when, and how many
    attempts are left; should the retry message be lost, the sweep finds the delivery due).
    A success queues the booking's next event. Returns whether it was delivered."""
    outcome = partner_events.webhook_deliver(delivery_id=delivery_id)
    if outcome.next_delivery_id is not None:
        self.app.send_task(partner_events.DELIVER_TASK, args=[outcome.next_delivery_id])
    if outcome.retry_in is not None:
        raise self.retry(countdown=broker.retry_countdown(outcome.retry_in))
    return outcome.delivered
