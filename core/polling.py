"""How long a client should wait before polling a pending booking again.

A booking is decided once the bookings of its show ahead of it are: its expected wait is
its queue position divided by the rate at which a show's drain decides. Polling sooner
than that only costs the server a request, so a client far back is told to wait longer;
the first ones keep the base delay, and nobody waits longer than the cap (the estimate can
be wrong, and a booking ahead may be cancelled).
"""

import math

from django.conf import settings

from core.models import Booking


def poll_retry_after(queue_position: int, *, base: int, cap: int, decisions_per_second: float) -> int:
    """Whole seconds to wait before the next poll of a booking with `queue_position`
    bookings ahead of it: at least `base` (and at least 1), else the expected wait rounded
    up, and never more than `cap` (nor less than 1, whatever the settings say)."""
    expected = math.ceil(max(queue_position, 0) / decisions_per_second) if decisions_per_second > 0 else cap
    return max(1, min(cap, max(base, expected)))


def booking_retry_after(booking: Booking) -> int | None:
    """The Retry-After of a pending booking (its queue position set by the selectors), or
    None once it is decided: there is nothing left to poll for."""
    if booking.status != Booking.Status.PENDING:
        return None
    return poll_retry_after(
        booking.queue_position or 0,
        base=settings.BOOKING_POLL_RETRY_AFTER,
        cap=settings.BOOKING_POLL_RETRY_AFTER_MAX,
        decisions_per_second=settings.BOOKING_POLL_DECISIONS_PER_SECOND,
    )
