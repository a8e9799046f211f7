"""Payments of held bookings, their refunds, the provider's webhook events, and the fake
provider's own ledger (core/payments/)."""

import uuid

from django.db import models
from django.db.models import Q

from core.models.bookings import Booking


class Payment(models.Model):
    """One charge attempt for a booking, written before the provider is called.

    The row exists before any money moves, so a process that dies between the provider's
    answer and applying it leaves a `created` or `processing` row behind, which the
    reconciliation job (core.services.payments.payments_reconcile) looks up at the provider
    and settles: every charge ends as a confirmed booking or a refund, never neither.
    """

    class Status(models.TextChoices):
        # Written, the provider not (yet, or not surely) called.
        CREATED = "created"
        # The provider is still deciding (an asynchronous method): its webhook will tell.
        PROCESSING = "processing"
        SUCCEEDED = "succeeded"
        # Refused at once (a card declined), or later by the provider's webhook.
        DECLINED = "declined"
        FAILED = "failed"

    class RefundStatus(models.TextChoices):
        # Decided (in the transaction that cancelled or expired the booking): the provider
        # is called after that commits, and again by the reconciliation job until it answers.
        PENDING = "pending"
        REFUNDED = "refunded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by the (booking, idempotency_key) unique constraint, which leads with it.
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="payments", db_index=False)
    provider = models.CharField(max_length=32)
    # The provider's id of the charge (a payment intent); null until it answered.
    intent_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # The provider's reference of the payment method: kept so that the reconciliation job can
    # send the very same charge again (the idempotency key makes that one charge).
    token = models.CharField(max_length=255)
    idempotency_key = models.CharField(max_length=255)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CREATED)
    # The provider's reason for a decline or failure (e.g. `card_declined`).
    failure_code = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    refund_status = models.CharField(max_length=16, choices=RefundStatus.choices, null=True, blank=True)  # noqa: DJ001
    refund_amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    refund_requested_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001

    class Meta:
        constraints = [
            # The client's Idempotency-Key names one charge of one booking: retries of it can
            # never write a second row.
            models.UniqueConstraint(fields=["booking", "idempotency_key"], name="payment_booking_key_unique"),
            # At most one charge of a booking is in flight: a second key while one is being
            # decided could charge twice.
            models.UniqueConstraint(
                fields=["booking"],
                condition=Q(status__in=["created", "processing"]),
                name="payment_one_in_flight_per_booking",
            ),
            # At most one charge a booking keeps: any other success is refunded, in the same
            # transaction that records it.
            models.UniqueConstraint(
                fields=["booking"],
                condition=Q(status="succeeded", refund_status__isnull=True),
                name="payment_one_kept_charge_per_booking",
            ),
            # One row per provider charge: a webhook or a reconciliation applies to one payment.
            models.UniqueConstraint(
                fields=["provider", "intent_id"], condition=Q(intent_id__isnull=False), name="payment_intent_unique"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative"),
            # Only money that was taken is given back, and never more of it.
            models.CheckConstraint(
                condition=Q(refund_status__isnull=True)
                | Q(status="succeeded", refund_amount__gte=0, refund_amount__lte=models.F("amount")),
                name="payment_refund_of_a_charge",
            ),
        ]
        indexes = [
            # The reconciliation job: payments not settled, and refunds not done, by age.
            models.Index(
                fields=["updated_at"], condition=Q(status__in=["created", "processing"]), name="payment_unsettled_idx"
            ),
            models.Index(fields=["updated_at"], condition=Q(refund_status="pending"), name="payment_refund_due_idx"),
        ]

    def __str__(self) -> str:
        return f"Payment {self.id} ({self.status}) of booking {self.booking_id}"


class PaymentEvent(models.Model):
    """A provider's webhook event, recorded in the transaction that applies it: delivered
    twice, the second finds its id here and has no effect."""

    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="payment_event_unique")]

    def __str__(self) -> str:
        return f"{self.provider} event {self.event_id}"


class FakeCharge(models.Model):
    """The `fake` provider's side of a charge (what a real provider keeps on its servers), in
    PostgreSQL so that it survives restarts and answers `retrieve` for reconciliation."""

    intent_id = models.CharField(primary_key=True, max_length=64)
    # A charge per idempotency key: a retry with the same key gets the same charge.
    idempotency_key = models.CharField(max_length=255, unique=True)
    token = models.CharField(max_length=255)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    # succeeded, declined, or processing until `settles_at` (then the token's outcome).
    status = models.CharField(max_length=16)
    outcome = models.CharField(max_length=16)
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    settles_at = models.DateTimeField(null=True, blank=True)
    refund_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    refund_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    refunded_amount = models.DecimalField(max_digits=10, decimal_places=2, default=0)

    def __str__(self) -> str:
        return f"Fake charge {self.intent_id} ({self.status})"
