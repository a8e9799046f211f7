"""Paying a held booking, the provider's results (answer, webhook, reconciliation) and refunds.

Record first, then call. A charge is written (`created`) in a transaction under the lock
order (the show row, then the booking: core/services/decisions.py) that checks the booking
is held; the provider is called after that commits, outside any transaction; its result is
applied in another transaction under the same lock order. So an expiry, a cancel and a
payment of one booking are decided once, by whichever commits first: a success that finds
the booking no longer held is refunded in the same transaction that records it, never
turned into a booking without seats. A refund is likewise written (`refund_pending`) in the
transaction that decides it and sent to the provider after the commit. Whatever a crash
leaves between the record and the provider's answer, payments_reconcile finds and settles.

The provider keeps "one charge per idempotency key", so sending the same charge again (a
client's retry, two retries at once, the reconciliation job) never charges twice.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.exceptions import Conflict, DependencyUnavailable, NotFound, PaymentDeclined, ValidationFailed
from core.models import Booking, Payment, PaymentEvent, Show
from core.payments import Charge, ChargeStatus, InvalidWebhook, ProviderUnavailable, provider
from core.selectors import bookings_visible_to
from core.services import partner_events
from core.services.decisions import Status, locked_shows

logger = logging.getLogger("core.payments")

PaymentStatus = Payment.Status
RefundStatus = Payment.RefundStatus
UNSETTLED = (PaymentStatus.CREATED, PaymentStatus.PROCESSING)
REFUND_TASK = "payments.refund"


@dataclass(frozen=True)
class PayResult:
    booking: Booking
    payment: Payment

    @property
    def processing(self) -> bool:
        """The provider is still deciding: the booking stays held until its webhook."""
        return self.payment.status in UNSETTLED


def booking_pay(*, booking_id, user, token: str, idempotency_key: str | None) -> PayResult:
    """Pay a held booking of `user` (staff: anyone's) with the payment method `token`.

    Writes the charge, calls the provider, applies its answer: held -> confirmed when it
    succeeded. The same `idempotency_key` is the same charge, however often and however
    concurrently it is sent (without one, every call is a new charge attempt). Returns the
    booking and the payment (`processing`: the provider decides later, by webhook).

    Raises NotFound (not the user's), Conflict (`hold_expired`; `booking_pending`,
    `booking_already_paid`, `booking_not_held`; `payment_in_progress` for another key while
    a charge is being decided; `idempotency_key_reused` with another token), PaymentDeclined
    (declined or failed: the booking stays held) and DependencyUnavailable (the provider
    did not answer: retry with the same key).
    """
    key = idempotency_key or f"auto-{uuid.uuid4()}"
    payment = _payment_record(booking_id=booking_id, user=user, token=token, key=key)
    if payment.status == PaymentStatus.CREATED:
        try:
            charge = provider().charge(
                token=payment.token,
                amount=payment.amount,
                currency=payment.currency,
                idempotency_key=_charge_key(payment),
                metadata={"payment_id": str(payment.pk), "booking_id": str(payment.booking_id)},
            )
        except ProviderUnavailable as exc:
            logger.warning("payment provider unavailable", extra={"payment_id": str(payment.pk), "error": str(exc)})
            raise DependencyUnavailable(
                "The payment provider did not answer; retry with the same Idempotency-Key.",
                code="payment_provider_unavailable",
            ) from None
        payment = payment_apply(payment_id=payment.pk, charge=charge)
    booking = Booking.objects.get(pk=payment.booking_id)
    return _outcome(booking, payment)


def _charge_key(payment: Payment) -> str:
    # The provider's idempotency key: this payment's id, unique across bookings and keys.
    return f"charge-{payment.pk}"


@transaction.atomic
def _payment_record(*, booking_id, user, token: str, key: str) -> Payment:
    """The payment of (booking, key): found again, or written `created` if the booking may
    be paid now. Under the lock order, so it is judged against the booking's latest state."""
    visible = bookings_visible_to(user=user).filter(pk=booking_id)
    show = locked_shows().filter(pk__in=visible.values("show_id")).first()
    booking = visible.select_for_update(of=("self",)).first() if show is not None else None
    if booking is None or show is None:
        raise NotFound("Booking not found.")
    existing = Payment.objects.filter(booking=booking, idempotency_key=key).first()
    if existing is not None:
        if existing.token != token:
            raise Conflict("This Idempotency-Key was used with another payment token.", code="idempotency_key_reused")
        return existing
    _check_payable(booking, now=timezone.now())
    if Payment.objects.filter(booking=booking, status__in=UNSETTLED).exists():
        raise Conflict(
            "Another payment of this booking is being decided; poll the booking.", code="payment_in_progress"
        )
    if booking.total is None:  # never for a held booking: the decider fixed its price
        raise Conflict("The booking has no price to pay.", code="booking_not_held")
    return Payment.objects.create(
        booking=booking,
        provider=provider().name,
        token=token,
        idempotency_key=key,
        amount=booking.total,
        currency=booking.currency_code,
    )


def _check_payable(booking: Booking, *, now: datetime) -> None:
    deadline = booking.hold_expires_at
    if booking.status == Status.EXPIRED or (booking.status == Status.HELD and (deadline is None or deadline <= now)):
        raise Conflict("The hold expired before it was paid; book again.", code="hold_expired")
    if booking.status == Status.PENDING:
        raise Conflict("The booking is not decided yet; poll it until it is held.", code="booking_pending")
    if booking.status == Status.CONFIRMED:
        raise Conflict("The booking is confirmed already.", code="booking_already_paid")
    if booking.status != Status.HELD:
        raise Conflict(f"A {booking.status} booking cannot be paid.", code="booking_not_held")


def _outcome(booking: Booking, payment: Payment) -> PayResult:
    """The pay call's answer for the payment's state (also for a replayed key)."""
    if payment.status in (PaymentStatus.DECLINED, PaymentStatus.FAILED):
        raise PaymentDeclined(
            f"The payment was declined ({payment.failure_code or payment.status}); the booking is still held "
            "until hold_expires_at: pay again with another token and a new Idempotency-Key.",
            details={"payment_token": [payment.failure_code or str(payment.status)]},
        )
    if payment.status == PaymentStatus.SUCCEEDED and payment.refund_status is not None:
        if booking.status == Status.EXPIRED:
            raise Conflict("The hold expired before the payment arrived; it is refunded.", code="hold_expired")
        raise Conflict(f"The booking is {booking.status}; the payment is refunded.", code="booking_not_held")
    return PayResult(booking=booking, payment=payment)


@transaction.atomic
def payment_apply(*, payment_id, charge: Charge, event_id: str | None = None) -> Payment:
    """Apply the provider's view of a charge to its payment and booking, under the lock order.

    succeeded: the payment succeeds; a held booking is confirmed (partner event
    booking.confirmed), any other (expired, cancelled, paid by another charge) gets the
    payment refunded (refund_pending now, the provider after the commit; partner event
    booking.refunded). declined / failed: an unsettled payment takes that status
    (the booking stays held). processing: a created payment is processing. A result that
    says nothing new changes nothing. With `event_id` (a webhook), an event applied already
    has no effect at all. Returns the payment.
    """
    ids = Payment.objects.filter(pk=payment_id).values("booking_id", "booking__show_id").first()
    if ids is None:
        raise NotFound("Payment not found.")
    locked_shows().filter(pk=ids["booking__show_id"]).exists()
    booking = Booking.objects.select_for_update(of=("self",)).get(pk=ids["booking_id"])
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if event_id is not None:
        _, new = PaymentEvent.objects.get_or_create(provider=payment.provider, event_id=event_id)
        if not new:
            logger.info("webhook event delivered again: no effect", extra={"event_id": event_id})
            return payment
    now = timezone.now()
    payment.intent_id = payment.intent_id or charge.intent_id
    if charge.status == ChargeStatus.SUCCEEDED and payment.status != PaymentStatus.SUCCEEDED:
        payment.status, payment.succeeded_at, payment.failure_code = PaymentStatus.SUCCEEDED, now, ""
        if booking.status == Status.HELD and _money_matches(payment, charge):
            booking.status, booking.confirmed_at = Status.CONFIRMED, now
            booking.save(update_fields=["status", "confirmed_at"])
            partner_events.booking_events_record(bookings=[booking], event=partner_events.Event.CONFIRMED)
        else:
            _refund_decide(payment, now=now)
            partner_events.booking_events_record(bookings=[booking], event=partner_events.Event.REFUNDED)
    elif charge.status in (ChargeStatus.DECLINED, ChargeStatus.FAILED) and payment.status in UNSETTLED:
        payment.status, payment.failure_code = PaymentStatus(str(charge.status)), charge.failure_code
    elif charge.status == ChargeStatus.PROCESSING and payment.status == PaymentStatus.CREATED:
        payment.status = PaymentStatus.PROCESSING
    payment.updated_at = now
    payment.save()
    logger.info(
        "payment applied",
        extra={
            "payment_id": str(payment.pk),
            "booking_id": str(booking.pk),
            "charge": str(charge.status),
            "payment_status": payment.status,
            "booking_status": booking.status,
            "refund": payment.refund_status,
        },
    )
    return payment


def _money_matches(payment: Payment, charge: Charge) -> bool:
    if charge.amount == payment.amount and charge.currency.upper() == payment.currency.upper():
        return True
    logger.error(
        "a charge's amount differs from the payment's: refunded, not confirmed",
        extra={"payment_id": str(payment.pk), "charged": f"{charge.amount} {charge.currency}"},
    )
    return False


def _refund_decide(payment: Payment, *, now: datetime) -> None:
    """Mark a succeeded payment refund_pending (in the caller's transaction) and send the
    refund to the provider once that commits."""
    payment.refund_status, payment.refund_amount, payment.refund_requested_at = (
        RefundStatus.PENDING,
        payment.amount,
        now,
    )
    payment_id = payment.pk
    transaction.on_commit(lambda: _send_refunds_quietly([payment_id]))


def payment_refund_for_cancel(*, booking: Booking, show: Show, now: datetime) -> Payment | None:
    """A user cancels `booking` (locked by the caller, under the lock order): its kept charge,
    if any, is refunded (refund_pending now, the provider after the commit). Raises Conflict
    `refund_window_closed` within REFUND_CUTOFF_MINUTES of the show's start."""
    payment = Payment.objects.filter(
        booking=booking, status=PaymentStatus.SUCCEEDED, refund_status__isnull=True
    ).first()
    if payment is None:
        return None
    if show.starts_at - now < timedelta(minutes=settings.REFUND_CUTOFF_MINUTES):
        raise Conflict(
            f"A paid booking can be cancelled (and refunded) until {settings.REFUND_CUTOFF_MINUTES:g} minutes "
            "before the show starts.",
            code="refund_window_closed",
        )
    _refund_decide(payment, now=now)
    payment.updated_at = now
    payment.save(update_fields=["refund_status", "refund_amount", "refund_requested_at", "updated_at"])
    return payment


def payments_refund_for_show(*, show_id: int, now: datetime) -> int:
    """A show is cancelled (its row locked by the caller): every kept charge of its bookings is
    refunded, whatever the cutoff (refund_pending now, the provider after the commit), each
    booking's partner event booking.refunded recorded after its booking.cancelled. Returns
    how many."""
    ids = list(
        Payment.objects.filter(
            booking__show_id=show_id, status=PaymentStatus.SUCCEEDED, refund_status__isnull=True
        ).values_list("pk", flat=True)
    )
    if not ids:
        return 0
    # The conditions on the updated table itself (see core/services/decisions.py).
    count = Payment.objects.filter(pk__in=ids, status=PaymentStatus.SUCCEEDED, refund_status__isnull=True).update(
        refund_status=RefundStatus.PENDING,
        refund_amount=F("amount"),
        refund_requested_at=now,
        updated_at=now,
    )
    refunded = Payment.objects.filter(pk__in=ids).values("booking_id")
    partner_events.booking_events_record(
        bookings=Booking.objects.filter(pk__in=refunded), event=partner_events.Event.REFUNDED
    )
    transaction.on_commit(lambda: _send_refunds_quietly(ids))
    return count


def _send_refunds_quietly(payment_ids: list) -> None:
    """After the commit: one refund is sent at once (a user's cancel answers with it done);
    many (a cancelled show) go to a worker. Whatever fails here the reconciliation job
    sends later: the refund_pending rows are the record."""
    try:
        if len(payment_ids) == 1:
            payment_refund_send(payment_id=payment_ids[0])
        else:
            current_app.send_task(REFUND_TASK, kwargs={"payment_ids": [str(pk) for pk in payment_ids]})
    except Exception:
        logger.exception("refunds not sent now; the reconciliation job will", extra={"count": len(payment_ids)})


def payment_refund_send(*, payment_id) -> Payment | None:
    """Send a pending refund to the provider and record it done: refund_pending -> refunded.

    Outside the lock order on purpose: the booking's fate is decided already, and this
    changes only the refund columns, conditionally on refund_pending, so a second sender
    (the reconciliation job) records nothing twice; the provider's idempotency key makes
    the money move once. Raises ProviderUnavailable."""
    payment = Payment.objects.filter(pk=payment_id, refund_status=RefundStatus.PENDING).first()
    if payment is None or payment.intent_id is None or payment.refund_amount is None:
        return payment
    refund = provider().refund(
        intent_id=payment.intent_id, amount=payment.refund_amount, idempotency_key=f"refund-{payment.pk}"
    )
    if refund.done:
        now = timezone.now()
        Payment.objects.filter(pk=payment.pk, refund_status=RefundStatus.PENDING).update(
            refund_status=RefundStatus.REFUNDED, refunded_at=now, refund_id=refund.refund_id, updated_at=now
        )
        logger.info("payment refunded", extra={"payment_id": str(payment.pk), "booking_id": str(payment.booking_id)})
    return payment


def payment_webhook_receive(*, payload: bytes, headers) -> Payment | None:
    """Verify and apply a provider webhook. Raises ValidationFailed (`invalid_signature`)
    when it does not verify, and changes nothing then. An event about a charge this service
    does not know is acknowledged and ignored (None)."""
    try:
        event = provider().verify_webhook(payload=payload, headers=headers)
    except InvalidWebhook as exc:
        logger.warning("webhook refused", extra={"reason": str(exc)})
        raise ValidationFailed(f"The webhook does not verify: {exc}.", code="invalid_signature") from None
    payment = _payment_of(event.charge)
    if payment is None:
        logger.warning("webhook about an unknown charge", extra={"intent_id": event.charge.intent_id})
        return None
    return payment_apply(payment_id=payment.pk, charge=event.charge, event_id=event.event_id)


def _payment_of(charge: Charge) -> Payment | None:
    # Our id in the charge's metadata finds the payment also before its intent id was
    # recorded (a webhook faster than the charge call's own answer).
    try:
        payment_id = uuid.UUID(str(charge.metadata.get("payment_id", "")))
    except ValueError:
        payment_id = None
    if payment_id is not None:
        payment = Payment.objects.filter(pk=payment_id).first()
        if payment is not None and payment.intent_id in (None, charge.intent_id):
            return payment
    return Payment.objects.filter(provider=provider().name, intent_id=charge.intent_id).first()


def payments_reconcile(*, older_than_seconds: float, limit: int = 200) -> int:
    """Settle what a crash or a lost webhook left: payments `created` or `processing` and
    refunds pending for longer than `older_than_seconds` are sent again (the same charge,
    by its idempotency key) or looked up at the provider, and applied. Returns how many
    were looked at; a provider that does not answer is tried on the next run."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = list(Payment.objects.filter(status__in=UNSETTLED, updated_at__lte=cutoff).order_by("updated_at")[:limit])
    for payment in stale:
        try:
            if payment.intent_id is None:
                charge = provider().charge(
                    token=payment.token,
                    amount=payment.amount,
                    currency=payment.currency,
                    idempotency_key=_charge_key(payment),
                    metadata={"payment_id": str(payment.pk), "booking_id": str(payment.booking_id)},
                )
            else:
                charge = provider().retrieve(intent_id=payment.intent_id)
            payment_apply(payment_id=payment.pk, charge=charge)
        except ProviderUnavailable as exc:
            logger.warning(
                "reconciliation: provider unavailable", extra={"payment_id": str(payment.pk), "error": str(exc)}
            )
    refunds = list(
        Payment.objects.filter(refund_status=RefundStatus.PENDING, updated_at__lte=cutoff)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    )
    for payment_id in refunds:
        try:
            payment_refund_send(payment_id=payment_id)
        except ProviderUnavailable as exc:
            logger.warning("reconciliation: refund not sent", extra={"payment_id": str(payment_id), "error": str(exc)})
    if stale or refunds:
        logger.info("payments reconciled", extra={"payments": len(stale), "refunds": len(refunds)})
    return len(stale) + len(refunds)


def booking_refund(booking: Booking) -> dict | None:
    """{"amount", "status"} of the money given back for `booking` (None when none): from the
    prefetched payments of a page, or one query. Only a won booking may have paid."""
    if booking.reference is None or booking.status in (Status.PENDING, Status.HELD):
        return None
    refunded = [p for p in booking.payments.all() if p.refund_status is not None]
    if not refunded:
        return None
    pending = any(p.refund_status == RefundStatus.PENDING for p in refunded)
    return {
        "amount": sum((p.refund_amount or Decimal(0) for p in refunded), start=Decimal(0)),
        "status": RefundStatus.PENDING if pending else RefundStatus.REFUNDED,
    }
