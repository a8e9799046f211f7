"""Partner webhooks: a transactional outbox of booking events, delivered signed, at least
once, in order per booking, with backoff, pausing endpoints that keep failing.

Recording. An event is a WebhookDelivery row per active endpoint, inserted in the SAME
transaction as the booking's state change: it exists if and only if the change committed,
and carries the booking as that transaction left it. The decider writes its events inside
the statement that writes its outcomes (core.booking_sql.write_decisions: no extra round
trip, nothing written without an active endpoint); every other transition calls
booking_events_record. After the commit one debounced `webhooks.dispatch` task is queued;
beat runs the same task every PARTNER_WEBHOOK_SWEEP_SECONDS for anything left behind.

Delivering. `webhooks.dispatch` lists the deliveries that may go now (due, endpoint active
and not paused, and no earlier event of the same booking for the same endpoint still
pending) and queues one `webhooks.deliver` task each. A delivery is claimed by one
conditional UPDATE that counts the attempt and sets a lease (next_attempt_at), so two
workers never send it at once and a worker that dies mid-request leaves it to the sweep
once the lease ends: at least once. A 2xx marks it delivered and queues the booking's next
event; anything else (a timeout, a refused connection, a 3xx: redirects are never followed)
schedules a retry with exponential backoff and jitter, and after PARTNER_WEBHOOK_MAX_ATTEMPTS
gives it up, which also lets the booking's next event go. An endpoint whose attempts failed
PARTNER_WEBHOOK_PAUSE_AFTER_FAILURES times in a row, or for PARTNER_WEBHOOK_PAUSE_AFTER_SECONDS,
is paused: its events keep being recorded but nothing is sent until staff resume it.

SSRF: endpoints are registered by staff only (the admin); the service POSTs to any http(s)
URL they enter, private addresses included, and never follows a redirect elsewhere. Where
partners' URLs come from outside, route the workers' egress through a filtering proxy
(httpx honours HTTPS_PROXY / NO_PROXY).
"""

import hashlib
import hmac
import json
import logging
import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from redis.exceptions import RedisError

from core import booking_sql
from core.models import Booking, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from core.redis import redis_client

logger = logging.getLogger("core.partner_events")

Event = WebhookDelivery.Event
DISPATCH_TASK = "webhooks.dispatch"
DELIVER_TASK = "webhooks.deliver"
SIGNATURE_HEADER = "X-Booking-Signature"
DISPATCH_MARKER = "booking:webhooks:dispatch"
# Deliveries queued per dispatch run; a run that hits it queues the next run at once.
DISPATCH_LIMIT = 500
# Bytes of a failed answer kept in the log.
ERROR_BODY_BYTES = 200
_PENDING = WebhookDelivery.Status.PENDING
_DELIVERY = WebhookDelivery._meta.db_table
_ENDPOINT = WebhookEndpoint._meta.db_table


def booking_events_record(*, bookings: QuerySet[Booking] | Iterable[Booking | UUID | str], event: str) -> int:
    """Record `event` (a WebhookDelivery.Event: booking.cancelled, booking.expired,
    booking.refunded, ...) for `bookings`, for every active endpoint; returns the deliveries
    written (0, and nothing written, when no endpoint is active).

    Call it inside the transaction that changed the bookings, AFTER the change (the payload
    is each booking as this transaction now sees it), still holding the show's row lock
    (the lock order of core.services.decisions), so a booking's events are recorded in the
    order of its transitions: that order is the delivery order. `bookings` may be a
    queryset (selected in SQL, never fetched: a bulk update's rows can be named by what it
    set, e.g. `status=cancelled, cancelled_at=now`), or Booking objects or ids. Delivery is
    queued when the transaction commits; a rolled-back change leaves no event.

    Raises RuntimeError outside a transaction (the event would not be atomic with the change).
    Issue 13 calls it for `booking.expired` (a hold's expiry) and `booking.refunded`.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("booking_events_record must run in the transaction that changes the bookings")
    if event not in Event.values:
        raise ValueError(f"unknown partner event {event!r}")
    if isinstance(bookings, QuerySet):
        ids_sql, params = bookings.order_by().values("pk").query.sql_with_params()
    else:
        ids = [str(b.pk if isinstance(b, Booking) else b) for b in bookings]
        if not ids:
            return 0
        ids_sql, params = "SELECT unnest(%s::uuid[])", (ids,)
    recorded = booking_sql.record_events(booking_ids=ids_sql, params=params, event=event, now=timezone.now())
    if recorded:
        transaction.on_commit(dispatch_soon)
    return recorded


def dispatch_soon() -> None:
    """Queue one `webhooks.dispatch` unless one is queued already (a short Redis marker).
    Never raises: the events are committed, and the periodic sweep queues them otherwise."""
    try:
        if redis_client().set(DISPATCH_MARKER, 1, nx=True, ex=max(1, int(settings.PARTNER_WEBHOOK_SWEEP_SECONDS))):
            current_app.send_task(DISPATCH_TASK)
    except Exception:
        logger.exception("could not queue partner webhook deliveries; the sweep will")


def webhook_deliveries_due(*, limit: int = DISPATCH_LIMIT) -> list[int]:
    """Ids of the deliveries that may be attempted now, oldest first: pending and due, their
    endpoint active and not paused, and no earlier event of the same booking for the same
    endpoint pending (the order per booking)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT d.id FROM {_DELIVERY} d JOIN {_ENDPOINT} e ON e.id = d.endpoint_id "  # noqa: S608  # nosec B608
            "WHERE d.status = %s AND d.next_attempt_at <= %s AND e.is_active AND e.paused_at IS NULL "
            f"AND NOT EXISTS (SELECT FROM {_DELIVERY} p WHERE p.endpoint_id = d.endpoint_id "
            "AND p.booking_id = d.booking_id AND p.status = %s AND p.id < d.id) ORDER BY d.id LIMIT %s",
            [_PENDING, now, _PENDING, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def webhook_dispatch() -> int:
    """Queue a `webhooks.deliver` task for every delivery due (the on-commit wake-up and the
    periodic sweep alike); returns how many. Queuing one twice is harmless: the claim lets
    one attempt through."""
    try:
        redis_client().delete(DISPATCH_MARKER)
    except RedisError:
        logger.warning("could not clear the webhook dispatch marker; it expires by itself")
    due = webhook_deliveries_due()
    for delivery_id in due:
        current_app.send_task(DELIVER_TASK, args=[delivery_id])
    if len(due) >= DISPATCH_LIMIT:
        current_app.send_task(DISPATCH_TASK)
    return len(due)


@dataclass(frozen=True)
class Outcome:
    """What an attempt came to: `retry_in` seconds until the next attempt (None: no retry
    to schedule), `next_delivery_id` the booking's next event for the endpoint, now free to go."""

    attempted: bool
    delivered: bool = False
    retry_in: float | None = None
    next_delivery_id: int | None = None


@dataclass(frozen=True)
class _Claim:
    attempts: int
    endpoint_id: int
    booking_id: UUID
    event: str
    event_id: UUID
    payload: dict
    url: str
    secret: str


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<body>` with the endpoint's secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def retry_delay(attempts: int) -> float:
    """Exponential backoff with "equal jitter" (half fixed, half random) after `attempts`."""
    ceiling = min(
        settings.PARTNER_WEBHOOK_RETRY_MAX_SECONDS, settings.PARTNER_WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempts - 1)
    )
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


def _lease_seconds() -> float:
    # Outlives one attempt (connect, send and read each bounded by the timeout) with margin.
    return 4 * settings.PARTNER_WEBHOOK_TIMEOUT_SECONDS + 30


def _claim(delivery_id: int) -> _Claim | None:
    """Count an attempt and take a lease on the delivery, if it may go now (see
    webhook_deliveries_due); None otherwise (delivered, not due, paused, or waiting for an
    earlier event). One conditional UPDATE: concurrent claims of one delivery let one through."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_DELIVERY} d SET attempts = d.attempts + 1, next_attempt_at = %s "  # noqa: S608  # nosec B608
            f"FROM {_ENDPOINT} e WHERE d.id = %s AND d.status = %s AND d.next_attempt_at <= %s "
            "AND e.id = d.endpoint_id AND e.is_active AND e.paused_at IS NULL "
            f"AND NOT EXISTS (SELECT FROM {_DELIVERY} p WHERE p.endpoint_id = d.endpoint_id "
            "AND p.booking_id = d.booking_id AND p.status = %s AND p.id < d.id) "
            "RETURNING d.attempts, d.endpoint_id, d.booking_id, d.event, d.event_id, d.payload, e.url, e.secret",
            [now + timedelta(seconds=_lease_seconds()), delivery_id, _PENDING, now, _PENDING],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    payload = row[5] if isinstance(row[5], dict) else json.loads(row[5])
    return _Claim(row[0], row[1], row[2], row[3], row[4], payload, row[6], row[7])


_client: tuple[int, httpx.Client] | None = None


def _http() -> httpx.Client:
    """One client per process (kept-alive connections to partners); a forked pool process
    makes its own."""
    global _client
    if _client is None or _client[0] != os.getpid():
        _client = (
            os.getpid(),
            httpx.Client(
                timeout=settings.PARTNER_WEBHOOK_TIMEOUT_SECONDS,
                follow_redirects=False,
                headers={"User-Agent": "booking-webhooks/1"},
            ),
        )
    return _client[1]


def _post(claim: _Claim) -> tuple[int | None, str]:
    """POST the signed event; (status code or None, error text or "")."""
    if urlsplit(claim.url).scheme not in ("http", "https"):
        return None, "refused: only http and https URLs are delivered"
    body = json.dumps(claim.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: f"t={timestamp},v1={webhook_signature(secret=claim.secret, timestamp=timestamp, body=body)}",
        "X-Booking-Event": claim.event,
        "X-Booking-Event-Id": str(claim.event_id),
        "X-Booking-Delivery-Attempt": str(claim.attempts),
    }
    try:
        with _http().stream("POST", claim.url, content=body, headers=headers) as response:
            if 200 <= response.status_code < 300:
                return response.status_code, ""
            head = b""
            for chunk in response.iter_bytes():
                head += chunk
                if len(head) >= ERROR_BODY_BYTES:
                    break
            return (
                response.status_code,
                f"HTTP {response.status_code}: {head[:ERROR_BODY_BYTES].decode(errors='replace')}",
            )
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]


def webhook_deliver(*, delivery_id: int) -> Outcome:
    """Attempt one delivery if it may go now; record the attempt and its consequences.

    pending -> delivered on a 2xx; otherwise still pending with next_attempt_at moved by the
    backoff, or given_up after PARTNER_WEBHOOK_MAX_ATTEMPTS. The endpoint's failure count is
    reset by a success; a failure may pause it. The HTTP request runs outside any transaction.
    """
    claim = _claim(delivery_id)
    if claim is None:
        return Outcome(attempted=False)
    started = timezone.now()
    clock = time.monotonic()
    status_code, error = _post(claim)
    delivered = not error
    return _record(delivery_id, claim, started, round((time.monotonic() - clock) * 1000), status_code, error, delivered)


@transaction.atomic
def _record(delivery_id, claim: _Claim, started, duration_ms: int, status_code, error: str, delivered: bool) -> Outcome:
    now = timezone.now()
    WebhookAttempt.objects.create(
        delivery_id=delivery_id,
        number=claim.attempts,
        started_at=started,
        duration_ms=duration_ms,
        status_code=status_code,
        error=error[:500],
    )
    mine = WebhookDelivery.objects.filter(pk=delivery_id, status=_PENDING, attempts=claim.attempts)
    retry_in = None
    if delivered:
        updated = mine.update(
            status=WebhookDelivery.Status.DELIVERED, delivered_at=now, last_status_code=status_code, last_error=""
        )
        WebhookEndpoint.objects.filter(pk=claim.endpoint_id).exclude(consecutive_failures=0, failing_since=None).update(
            consecutive_failures=0, failing_since=None
        )
    else:
        given_up = claim.attempts >= settings.PARTNER_WEBHOOK_MAX_ATTEMPTS
        retry_in = None if given_up else retry_delay(claim.attempts)
        updated = mine.update(
            status=WebhookDelivery.Status.GIVEN_UP if given_up else _PENDING,
            next_attempt_at=now + timedelta(seconds=retry_in or 0),
            last_status_code=status_code,
            last_error=error[:500],
        )
        _count_failure(claim.endpoint_id, now)
        logger.warning(
            "partner webhook attempt failed",
            extra={"delivery_id": delivery_id, "attempt": claim.attempts, "error": error[:200], "given_up": given_up},
        )
        if not given_up:
            return Outcome(attempted=True, retry_in=retry_in if updated else None)
    if not updated:
        # Our lease ran out and another attempt took the delivery over: it carries on.
        return Outcome(attempted=True, delivered=delivered)
    following = (
        WebhookDelivery.objects.filter(endpoint_id=claim.endpoint_id, booking_id=claim.booking_id, status=_PENDING)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    return Outcome(attempted=True, delivered=delivered, next_delivery_id=following)


def _count_failure(endpoint_id: int, now: datetime) -> None:
    """One more failure in a row for the endpoint; pause it when it has failed too often or
    for too long. One UPDATE, so concurrent failures all count."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_ENDPOINT} SET consecutive_failures = consecutive_failures + 1, "  # noqa: S608  # nosec B608
            "failing_since = COALESCE(failing_since, %s), "
            "paused_at = CASE WHEN paused_at IS NULL AND (consecutive_failures + 1 >= %s "
            "OR COALESCE(failing_since, %s) <= %s) THEN %s ELSE paused_at END, "
            "pause_reason = CASE WHEN paused_at IS NULL AND (consecutive_failures + 1 >= %s "
            "OR COALESCE(failing_since, %s) <= %s) THEN %s ELSE pause_reason END "
            "WHERE id = %s RETURNING paused_at = %s",
            [
                now,
                settings.PARTNER_WEBHOOK_PAUSE_AFTER_FAILURES,
                now,
                now - timedelta(seconds=settings.PARTNER_WEBHOOK_PAUSE_AFTER_SECONDS),
                now,
                settings.PARTNER_WEBHOOK_PAUSE_AFTER_FAILURES,
                now,
                now - timedelta(seconds=settings.PARTNER_WEBHOOK_PAUSE_AFTER_SECONDS),
                f"failed {settings.PARTNER_WEBHOOK_PAUSE_AFTER_FAILURES} times in a row or for "
                f"{settings.PARTNER_WEBHOOK_PAUSE_AFTER_SECONDS} s",
                endpoint_id,
                now,
            ],
        )
        row = cursor.fetchone()
    if row and row[0]:
        logger.error("partner webhook endpoint paused after repeated failures", extra={"endpoint_id": endpoint_id})


def webhook_endpoint_resume(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Resume a paused endpoint (staff): paused -> active with its failure count reset, and
    its waiting deliveries due now, so they go out at once, in order per booking. Events
    recorded while it was paused are delivered; those given up stay given up."""
    now = timezone.now()
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            paused_at=None, pause_reason="", consecutive_failures=0, failing_since=None
        )
        WebhookDelivery.objects.filter(endpoint_id=endpoint.pk, status=_PENDING).update(next_attempt_at=now)
        transaction.on_commit(dispatch_soon)
    endpoint.refresh_from_db()
    logger.info("partner webhook endpoint resumed", extra={"endpoint_id": endpoint.pk})
    return endpoint
