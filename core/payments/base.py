"""The payment provider interface, shaped like a payment-intent API (Stripe's PaymentIntent,
Adyen's payments, ...): a charge is created and confirmed in one call with an idempotency
key, answers `succeeded`, `processing` (decided later, told by a signed webhook) or a
refusal; refunds carry their own idempotency key; webhooks are verified by the provider's
own signature scheme.

Every call may be repeated with the same idempotency key and must then return the same
charge or refund: the service retries after crashes and timeouts (the reconciliation job),
and relies on the provider for "one charge per key".
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class ChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    # Still being decided (a bank redirect, an asynchronous method): the webhook tells.
    PROCESSING = "processing"
    # Refused at once (Stripe: requires_payment_method after a confirm).
    DECLINED = "declined"
    # Refused later, after processing.
    FAILED = "failed"


@dataclass(frozen=True)
class Charge:
    """The provider's view of one charge (a payment intent)."""

    intent_id: str
    status: ChargeStatus
    amount: Decimal
    currency: str
    # The provider's reason for a refusal, e.g. `card_declined`.
    failure_code: str = ""
    # What the service attached to the charge (its payment id), returned as given.
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Refund:
    refund_id: str
    # True once the provider has the money on its way back; False: ask again later.
    done: bool


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook event about one charge."""

    event_id: str
    charge: Charge


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered an error: the call may or may not have
    happened; repeat it with the same idempotency key."""


class InvalidWebhook(Exception):
    """A webhook whose signature, timestamp or body does not verify."""


class PaymentProvider(Protocol):
    name: str

    def charge(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str, metadata: Mapping[str, str]
    ) -> Charge:
        """Create and confirm a charge of `amount` with the payment method `token`. The same
        `idempotency_key` returns the same charge. Raises ProviderUnavailable."""
        ...

    def retrieve(self, *, intent_id: str) -> Charge:
        """The charge as the provider sees it now. Raises ProviderUnavailable."""
        ...

    def refund(self, *, intent_id: str, amount: Decimal, idempotency_key: str) -> Refund:
        """Give back `amount` of a succeeded charge; the same key is the same refund.
        Raises ProviderUnavailable."""
        ...

    def verify_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """The event of a webhook request, or InvalidWebhook when it does not verify."""
        ...
