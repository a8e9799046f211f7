"""Prometheus metrics of the booking pipeline, counted in whichever process the event happens.

The API runs as several gunicorn processes and decisions happen in Celery pool processes, so
counters live in prometheus_client's multiprocess mode: every process writes its own values
to a memory-mapped file in PROMETHEUS_MULTIPROC_DIR (no network round trip, no lock shared
between processes), and `/metrics` adds up the files of every process on the host, including
processes that have exited (whose files are merged into an archive, core/metrics_archive.py).
State that PostgreSQL already knows (pending bookings per show, the oldest pending booking)
is not counted at all but read at scrape time, see booking_api/metrics.py.
"""

import logging
import os
from collections.abc import Iterable
from datetime import datetime
from http import HTTPStatus

from django.conf import settings
from prometheus_client import Counter, Histogram, values

from core import metrics_archive

logger = logging.getLogger("core.metrics")


def _use_multiprocess_values(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    # prometheus_client picks its value class when it is first imported, which in a Celery
    # process is before Django's settings are read (the celery command loads Flower's plugin,
    # which imports it); set it here, before any metric below is created.
    values.ValueClass = values.MultiProcessValue(process_identifier=metrics_archive.process_identifier)


def archive_exited_processes(*, exiting: int | None = None) -> None:
    """Merge the metrics files of this host's exited processes (and of `exiting`, the
    caller at its exit) into the archive (core/metrics_archive.py); never raises."""
    if not settings.PROMETHEUS_MULTIPROC_DIR:
        return
    try:
        metrics_archive.archive_exited(settings.PROMETHEUS_MULTIPROC_DIR, exiting=exiting)
    except Exception:
        # The files stay and are merged by the next process that tries; nothing is lost.
        logger.warning("could not archive the metrics files of exited processes", exc_info=True)


def _use_process_values() -> None:
    # PROMETHEUS_MULTIPROC_DIR set but empty means per-process counters (README), while
    # prometheus_client takes any value, the empty one too, as its directory: the working
    # directory. Choose the in-memory value class again, and drop the variable so that
    # processes started from this one do not make the same mistake.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    values.ValueClass = values.MutexValue


if settings.PROMETHEUS_MULTIPROC_DIR:
    _use_multiprocess_values(settings.PROMETHEUS_MULTIPROC_DIR)
else:
    _use_process_values()

# Seconds; from one request's handling to a flash sale's backlog of minutes.
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DECISION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

HTTP_REQUESTS = Counter(
    "http_requests", "HTTP requests answered, by route pattern and status.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request.", ["method", "route"], buckets=_HTTP_BUCKETS
)
HTTP_SHED = Counter(
    "http_requests_shed",
    "Requests answered 503 overloaded by admission control (booking_api/admission.py), by reason.",
    ["reason"],
)
BOOKINGS_ACCEPTED = Counter("booking_accepted", "Bookings accepted (202, a new pending row; not replays).", ["kind"])
BOOKING_DECISIONS = Counter(
    "booking_decisions",
    "Bookings moved out of pending by a decision: confirmed, held (paying shows), or failed with a reason.",
    ["outcome", "reason"],
)
BOOKING_HOLDS_EXPIRED = Counter("booking_holds_expired", "Held bookings that expired unpaid, their seats freed.")
WAITLIST_OFFERS = Counter("booking_waitlist_offers", "Held bookings offered to waiting-list entries from freed seats.")
BOOKING_DECISION_LATENCY = Histogram(
    "booking_decision_latency_seconds",
    "Time from a booking's acceptance to its decision by a worker.",
    buckets=_DECISION_BUCKETS,
)
BOOKING_CANCELLATIONS = Counter("booking_cancellations", "Bookings cancelled, by whom.", ["by"])
LOCK_BUSY = Counter("booking_show_lock_busy", "Drains that found their show's lock held by another worker.")
TASK_RETRIES = Counter("booking_task_retries", "Decision tasks retried later, by reason.", ["reason"])
LOCK_LOST = Counter("booking_show_lock_lost", "Drains that stopped because their show lock expired.")
RECOVERY_REQUEUES = Counter("booking_recovery_requeued_shows", "Shows re-queued by the recovery job.")
TICKET_CHECKINS = Counter("booking_checkins", "Ticket scans at the door, by outcome.", ["outcome"])
CHECKIN_OUTCOMES = ("admitted", "already_admitted", "ticket_void", "not_found")


# Labels taken from a request come from closed sets: a client choosing the method (any token
# is a valid HTTP method) or the status would otherwise add a series per request, and every
# series costs memory in each process, in the multiprocess files and in Prometheus.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
OTHER_METHOD = "OTHER"
_HTTP_STATUSES = frozenset(status.value for status in HTTPStatus)


def http_request_observed(*, method: str, route: str, status: int, seconds: float) -> None:
    """Count and time one answered request. `route` must be a URL pattern or a fixed word,
    never the path (the middleware's `_route`)."""
    method = method if method in HTTP_METHODS else OTHER_METHOD
    status_label = str(status) if status in _HTTP_STATUSES else "other"
    HTTP_REQUESTS.labels(method=method, route=route, status=status_label).inc()
    HTTP_DURATION.labels(method=method, route=route).observe(seconds)


def http_request_shed(*, reason: str) -> None:
    """One request shed by admission control: `limit` (too many admitted) or `wait` (queued too long)."""
    HTTP_SHED.labels(reason=reason).inc()


def booking_accepted(*, by_quantity: bool) -> None:
    BOOKINGS_ACCEPTED.labels(kind="quantity" if by_quantity else "seats").inc()


def bookings_decided(bookings: Iterable, *, now: datetime) -> None:
    """Count worker decisions and their acceptance-to-decision time."""
    for booking in bookings:
        BOOKING_DECISIONS.labels(outcome=booking.status, reason=booking.failure_reason or "none").inc()
        BOOKING_DECISION_LATENCY.observe(max(0.0, (now - booking.created_at).total_seconds()))


def bookings_failed(count: int, *, reason: str) -> None:
    """Count bookings failed in bulk (show started or cancelled), outside a worker's decision."""
    if count:
        BOOKING_DECISIONS.labels(outcome="failed", reason=reason).inc(count)


def bookings_expired(count: int) -> None:
    """Count held bookings that expired unpaid."""
    if count:
        BOOKING_HOLDS_EXPIRED.inc(count)


def waitlist_offered(count: int) -> None:
    """Count waiting-list offers made (held bookings from freed seats)."""
    if count:
        WAITLIST_OFFERS.inc(count)


def bookings_cancelled(count: int, *, by: str) -> None:
    if count:
        BOOKING_CANCELLATIONS.labels(by=by).inc(count)


def ticket_checked_in(*, outcome: str) -> None:
    """One scan at the door: one of CHECKIN_OUTCOMES."""
    TICKET_CHECKINS.labels(outcome=outcome).inc()


def _declare_series() -> None:
    # Every outcome exists from the start at 0, so rates and alerts work before the first event.
    for kind in ("seats", "quantity"):
        BOOKINGS_ACCEPTED.labels(kind=kind)
    for reason in ("limit", "wait"):
        HTTP_SHED.labels(reason=reason)
    BOOKING_DECISIONS.labels(outcome="confirmed", reason="none")
    BOOKING_DECISIONS.labels(outcome="held", reason="none")
    for reason in ("seats_unavailable", "sold_out", "show_started", "show_cancelled", "processing_error"):
        BOOKING_DECISIONS.labels(outcome="failed", reason=reason)
    for reason in ("lock_busy", "dependency", "contention"):
        TASK_RETRIES.labels(reason=reason)
    for by in ("user", "show"):
        BOOKING_CANCELLATIONS.labels(by=by)
    for outcome in CHECKIN_OUTCOMES:
        TICKET_CHECKINS.labels(outcome=outcome)


_declare_series()
