"""The `fake` payment provider, for development and tests: real state, fake money.

Tokens (CONTRACT): `tok_ok` succeeds at once, `tok_declined` is declined, `tok_async_ok` and
`tok_async_fail` answer `processing` and are decided PAYMENT_FAKE_WEBHOOK_DELAY_SECONDS
later, when a Celery task (`payments.fake_webhook`) POSTs the signed result to the service's
webhook (PAYMENT_FAKE_WEBHOOK_URL) over HTTP, as a real provider would. Any other token is
declined (`invalid_payment_method`).

Its ledger is a PostgreSQL table (core.models.FakeCharge), so it survives restarts, answers
`retrieve` for reconciliation (a processing charge past its moment is decided then, also
when its webhook was lost), and keeps one charge per idempotency key.
"""

import json
import logging
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.models import FakeCharge
from core.payments import signing
from core.payments.base import Charge, ChargeStatus, InvalidWebhook, ProviderUnavailable, Refund, WebhookEvent

logger = logging.getLogger("core.payments")

# token -> (the answer at once, the outcome once settled, the refusal's code)
TOKENS = {
    "tok_ok": (ChargeStatus.SUCCEEDED, ChargeStatus.SUCCEEDED, ""),
    "tok_declined": (ChargeStatus.DECLINED, ChargeStatus.DECLINED, "card_declined"),
    "tok_async_ok": (ChargeStatus.PROCESSING, ChargeStatus.SUCCEEDED, ""),
    "tok_async_fail": (ChargeStatus.PROCESSING, ChargeStatus.FAILED, "payment_failed"),
}
UNKNOWN_TOKEN = (ChargeStatus.DECLINED, ChargeStatus.DECLINED, "invalid_payment_method")
WEBHOOK_TASK = "payments.fake_webhook"


class FakeProvider:
    name = "fake"

    def charge(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str, metadata: Mapping[str, str]
    ) -> Charge:
        if not settings.PAYMENT_FAKE_ALLOWED:
            raise ProviderUnavailable("the fake provider takes no money: set PAYMENT_FAKE_ALLOWED=1 (staging only)")
        status, outcome, code = TOKENS.get(token, UNKNOWN_TOKEN)
        delay = timedelta(seconds=settings.PAYMENT_FAKE_WEBHOOK_DELAY_SECONDS)
        with transaction.atomic():
            # One charge per key, also for two calls at once: the unique key decides.
            row, created = FakeCharge.objects.get_or_create(
                idempotency_key=idempotency_key,
                defaults={
                    "intent_id": f"pi_fake_{uuid.uuid4().hex}",
                    "token": token,
                    "amount": amount,
                    "currency": currency,
                    "status": status,
                    "outcome": outcome,
                    "metadata": {**metadata, "failure_code": code},
                    "settles_at": timezone.now() + delay if status == ChargeStatus.PROCESSING else None,
                },
            )
            if created and status == ChargeStatus.PROCESSING:
                transaction.on_commit(lambda: _queue_webhook(row.intent_id, delay.total_seconds()))
        return _charge(row)

    def retrieve(self, *, intent_id: str) -> Charge:
        return _charge(_settled(intent_id))

    def refund(self, *, intent_id: str, amount: Decimal, idempotency_key: str) -> Refund:
        with transaction.atomic():
            row = FakeCharge.objects.select_for_update().filter(pk=intent_id).first()
            if row is None or row.status != ChargeStatus.SUCCEEDED:
                raise ProviderUnavailable(f"no succeeded charge {intent_id} to refund")
            if row.refund_key is None:
                if amount > row.amount:
                    raise ProviderUnavailable(f"refund of {amount} exceeds the charge of {row.amount}")
                row.refund_id, row.refund_key, row.refunded_amount = (
                    f"re_fake_{uuid.uuid4().hex}",
                    idempotency_key,
                    amount,
                )
                row.save(update_fields=["refund_id", "refund_key", "refunded_amount"])
            elif row.refund_key != idempotency_key:
                raise ProviderUnavailable(f"charge {intent_id} was refunded already under another key")
        return Refund(refund_id=str(row.refund_id), done=True)

    def verify_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        signing.verify(
            payload,
            headers.get(signing.HEADER),
            secret=settings.PAYMENT_WEBHOOK_SECRET,
            tolerance=settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS,
        )
        try:
            event = json.loads(payload)
            data = event["data"]
            charge = Charge(
                intent_id=str(data["intent_id"]),
                status=ChargeStatus(data["status"]),
                amount=Decimal(data["amount"]),
                currency=str(data["currency"]),
                failure_code=str(data.get("failure_code", "")),
                metadata=dict(data.get("metadata", {})),
            )
            return WebhookEvent(event_id=str(event["id"]), charge=charge)
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise InvalidWebhook(f"malformed event: {exc}") from None


def _settled(intent_id: str) -> FakeCharge:
    """The charge, decided now if its moment has come (the ledger's own clock)."""
    FakeCharge.objects.filter(pk=intent_id, status=ChargeStatus.PROCESSING, settles_at__lte=timezone.now()).update(
        status=F("outcome")
    )
    row = FakeCharge.objects.filter(pk=intent_id).first()
    if row is None:
        raise ProviderUnavailable(f"unknown charge {intent_id}")
    return row


def _charge(row: FakeCharge) -> Charge:
    metadata = dict(row.metadata)
    code = metadata.pop("failure_code", "") if row.status != ChargeStatus.SUCCEEDED else ""
    metadata.pop("failure_code", None)
    return Charge(
        intent_id=row.intent_id,
        status=ChargeStatus(row.status),
        amount=row.amount,
        currency=row.currency,
        failure_code=code,
        metadata=metadata,
    )


def _queue_webhook(intent_id: str, countdown: float) -> None:
    try:
        current_app.send_task(WEBHOOK_TASK, kwargs={"intent_id": intent_id}, countdown=countdown)
    except Exception:
        # The broker is down: the charge is settled anyway when the reconciliation job asks.
        logger.exception("fake webhook not queued", extra={"intent_id": intent_id})


def webhook_request(*, intent_id: str) -> tuple[bytes, dict[str, str]] | None:
    """The signed webhook request (body, headers) telling a decided charge's result, or None
    while it is still processing. The event id is derived from the charge and its result, so
    a redelivery is the same event."""
    charge = _charge(_settled(intent_id))
    if charge.status == ChargeStatus.PROCESSING:
        return None
    kind = "payment_intent.succeeded" if charge.status == ChargeStatus.SUCCEEDED else "payment_intent.payment_failed"
    body = {
        "id": f"evt_{intent_id}_{charge.status}",
        "type": kind,
        "data": {
            "intent_id": charge.intent_id,
            "status": str(charge.status),
            "amount": f"{charge.amount:.2f}",
            "currency": charge.currency,
            "failure_code": charge.failure_code,
            "metadata": dict(charge.metadata),
        },
    }
    payload = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        signing.HEADER: signing.sign(payload, secret=settings.PAYMENT_WEBHOOK_SECRET),
    }
    return payload, headers


def webhook_deliver(*, intent_id: str) -> int | None:
    """POST a decided charge's webhook to PAYMENT_FAKE_WEBHOOK_URL; returns the HTTP status,
    or None while the charge is still processing. Raises on a network error or a non-2xx
    answer, for the task to retry."""
    request = webhook_request(intent_id=intent_id)
    if request is None:
        return None
    payload, headers = request
    url = settings.PAYMENT_FAKE_WEBHOOK_URL
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"PAYMENT_FAKE_WEBHOOK_URL is not an http(s) URL: {url}")
    post = urllib.request.Request(url, data=payload, headers=headers, method="POST")  # noqa: S310 - checked above
    with urllib.request.urlopen(post, timeout=10) as response:  # noqa: S310  # nosec B310
        return response.status
