"""Webhook signatures in the common scheme (Stripe's `t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`): the signed timestamp bounds replays to PAYMENT_WEBHOOK_TOLERANCE_SECONDS."""

import hashlib
import hmac
import time

from core.payments.base import InvalidWebhook

HEADER = "Payment-Signature"


def sign(payload: bytes, *, secret: str, timestamp: int | None = None) -> str:
    """The signature header's value for `payload`, signed now (or at `timestamp`)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_digest(payload, secret=secret, timestamp=timestamp)}"


def verify(payload: bytes, header: str | None, *, secret: str, tolerance: float) -> None:
    """Raise InvalidWebhook unless `header` signs `payload` with `secret`, within `tolerance`
    seconds of now."""
    if not header:
        raise InvalidWebhook(f"no {HEADER} header")
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        raise InvalidWebhook("no timestamp in the signature") from None
    if abs(time.time() - timestamp) > tolerance:
        raise InvalidWebhook("the signature's timestamp is outside the tolerance (a replay?)")
    expected = _digest(payload, secret=secret, timestamp=timestamp)
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        raise InvalidWebhook("the signature does not match")


def _digest(payload: bytes, *, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
