"""`/metrics` in Prometheus' text format, for operators' scrapers only.

Counters come from every process of the host (core/metrics.py explains the multiprocess
files). Queue depth is read at scrape time from where it is true: pending bookings from
PostgreSQL (the source of truth, right however many processes there are) and waiting
messages from the broker. A dependency that does not answer is reported as down
(`booking_metrics_source_up`) instead of failing the scrape.
"""

import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

import core.metrics  # noqa: F401 - creates the multiprocess directory before it is read
from booking_api.exceptions import error_body
from core import broker, decision_queue, metrics_archive, selectors

logger = logging.getLogger("booking_api.metrics")


class QueueDepthCollector:
    """Gauges computed when scraped: pending bookings (PostgreSQL) and queued messages (broker)."""

    def collect(self):
        up = GaugeMetricFamily("booking_metrics_source_up", "Whether a scrape-time source answered.", labels=["source"])
        try:
            yield from self._pending()
            up.add_metric(["database"], 1)
        except Exception:
            logger.warning("metrics: pending bookings unavailable", exc_info=True)
            up.add_metric(["database"], 0)
        try:
            yield self._queued()
            up.add_metric(["broker"], 1)
        except Exception:
            logger.warning("metrics: broker queue depth unavailable", exc_info=True)
            up.add_metric(["broker"], 0)
        yield up

    def _pending(self):
        summary = selectors.bookings_pending_summary(top_shows=settings.METRICS_PENDING_TOP_SHOWS)
        yield GaugeMetricFamily("booking_pending", "Bookings accepted and not decided yet.", value=summary["total"])
        oldest = summary["oldest_created_at"]
        age = (timezone.now() - oldest).total_seconds() if oldest else 0
        yield GaugeMetricFamily(
            "booking_pending_oldest_age_seconds", "How long the oldest pending booking has waited.", value=max(0, age)
        )
        by_show = GaugeMetricFamily(
            "booking_pending_by_show",
            f"Pending bookings of the {settings.METRICS_PENDING_TOP_SHOWS} shows with the most.",
            labels=["show_id"],
        )
        for show_id, count in summary["by_show"]:
            by_show.add_metric([str(show_id)], count)
        yield by_show

    def _queued(self):
        family = GaugeMetricFamily(
            "booking_queue_messages",
            "Messages waiting in a broker queue (not yet taken by a worker).",
            labels=["queue"],
        )
        for queue, length in decision_queue.queue_lengths(
            broker.queue_names(), timeout=settings.REDIS_SOCKET_TIMEOUT
        ).items():
            family.add_metric([queue], length)
        return family


def exposition() -> bytes:
    """Every metric: the counters of all processes of the host, then the scrape-time gauges."""
    scrape = CollectorRegistry()
    scrape.register(QueueDepthCollector())
    if not settings.PROMETHEUS_MULTIPROC_DIR:
        return generate_latest(REGISTRY) + generate_latest(scrape)
    counted = CollectorRegistry()
    MultiProcessCollector(counted, path=settings.PROMETHEUS_MULTIPROC_DIR)
    with metrics_archive.reading(settings.PROMETHEUS_MULTIPROC_DIR):
        counters = generate_latest(counted)
    return counters + generate_latest(scrape)


def _peer_allowed(request) -> bool:
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(entry, strict=False) for entry in settings.METRICS_ALLOW_IPS)


def _token_valid(request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return bool(settings.METRICS_TOKEN) and scheme == "Bearer" and hmac.compare_digest(token, settings.METRICS_TOKEN)


@never_cache
def metrics_view(request):
    """Served only with the METRICS_TOKEN bearer or to an allowed address; refused by default."""
    if not (_token_valid(request) or _peer_allowed(request)):
        return _refused()
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


def _refused() -> JsonResponse:
    if settings.METRICS_TOKEN:
        response = JsonResponse(
            error_body("not_authenticated", "A valid metrics bearer token is required."), status=401
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    message = "Metrics are not served to this address; set METRICS_TOKEN or METRICS_ALLOW_IPS."
    return JsonResponse(error_body("permission_denied", message), status=403)
