"""Money moves only through a payment provider (DESIGN "The box office").

`provider()` is the one configured by PAYMENT_PROVIDER: `fake` (core/payments/fake.py) for
development and tests, or the dotted path of a class implementing
core.payments.base.PaymentProvider (README "Plugging in a real payment provider").
"""

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from core.payments.base import (
    Charge,
    ChargeStatus,
    InvalidWebhook,
    PaymentProvider,
    ProviderUnavailable,
    Refund,
    WebhookEvent,
)

__all__ = [
    "Charge",
    "ChargeStatus",
    "InvalidWebhook",
    "PaymentProvider",
    "ProviderUnavailable",
    "Refund",
    "WebhookEvent",
    "provider",
]

BUILT_IN = {"fake": "core.payments.fake.FakeProvider"}


@cache
def provider() -> PaymentProvider:
    """The configured provider, made once per process."""
    path = BUILT_IN.get(settings.PAYMENT_PROVIDER, settings.PAYMENT_PROVIDER)
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"PAYMENT_PROVIDER={settings.PAYMENT_PROVIDER!r} cannot be imported: {exc}") from exc
    return cls()
