"""Partner webhooks: the endpoints staff register, and the outbox of events for them.

A WebhookDelivery is the outbox row: one event of one booking for one endpoint, written in
the same transaction as the booking's state change (core/services/partner_events.py), so an
event exists exactly when its change committed. Workers then deliver it, at least once, in
order per booking and endpoint; WebhookAttempt keeps each try for the admin's log.
"""

import secrets

from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    """A partner's URL. Registered by staff only (the admin), which is the SSRF boundary:
    the service POSTs to whatever http(s) URL staff enter, including private addresses."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500, validators=[URLValidator(schemes=["http", "https"])])
    # The shared HMAC key; kept in clear because signing needs it (like an API key).
    secret = models.CharField(max_length=128, default=new_webhook_secret)
    # Staff's switch: an inactive endpoint is sent nothing and gets no new events.
    is_active = models.BooleanField(default=True)
    # Set by the service when the endpoint keeps failing: its events are still recorded but
    # not attempted until staff resume it (core.services.partner_events.webhook_endpoint_resume).
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=200, blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event for one endpoint (the outbox row) and the state of its delivery."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        # Attempted PARTNER_WEBHOOK_MAX_ATTEMPTS times without a 2xx: the booking's next
        # event for this endpoint may go.
        GIVEN_UP = "given_up"

    class Event(models.TextChoices):
        CONFIRMED = "booking.confirmed"
        FAILED = "booking.failed"
        CANCELLED = "booking.cancelled"
        EXPIRED = "booking.expired"
        REFUNDED = "booking.refunded"

    # Insertion order is event order: a booking's transitions are serialised by its show's
    # row lock, so a later event of a booking is inserted after the earlier one committed.
    id = models.BigAutoField(primary_key=True)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The same for every endpoint an event goes to: partners de-duplicate on it.
    event_id = models.UUIDField()
    event = models.CharField(max_length=32, choices=Event.choices)
    # Not a foreign key: the delivery log outlives the retention purge of old bookings.
    booking_id = models.UUIDField()
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When it may be attempted (again); while an attempt runs, the end of its lease.
    next_attempt_at = models.DateTimeField()
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The head of each (endpoint, booking) queue: an event waits for the earlier ones.
            models.Index(
                fields=["endpoint", "booking_id", "id"], condition=Q(status="pending"), name="delivery_pending_idx"
            ),
            # The sweep: pending deliveries that are due.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_due_idx"),
            # The admin's log of one booking.
            models.Index(fields=["booking_id"], name="delivery_booking_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.booking_id} -> {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery, for the admin's delivery log."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error}"
