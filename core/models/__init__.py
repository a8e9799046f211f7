"""The booking domain's tables and the constraints that guard them.

PostgreSQL is the source of truth: the constraints here (one holder per seat, no two shows
overlapping on a screen, one booking per idempotency key) hold whatever the code above
them does.
"""

from core.models.auth import RefreshTokenFamily
from core.models.bookings import (
    BOOKING_SEQUENCE,
    OPEN_STATUSES,
    SEAT_HOLDING_STATUSES,
    BookedSeat,
    Booking,
    BookingLine,
)
from core.models.catalogue import Movie, Screen, Show, ShowPrice, TsTzRange
from core.models.payments import FakeCharge, Payment, PaymentEvent
from core.models.waitlist import WaitlistEntry
from core.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "BOOKING_SEQUENCE",
    "OPEN_STATUSES",
    "SEAT_HOLDING_STATUSES",
    "BookedSeat",
    "Booking",
    "BookingLine",
    "FakeCharge",
    "Movie",
    "Payment",
    "PaymentEvent",
    "RefreshTokenFamily",
    "Screen",
    "Show",
    "ShowPrice",
    "TsTzRange",
    "WaitlistEntry",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
