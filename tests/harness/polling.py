"""Polling a booking as the example client does (examples/book_tickets.py), over httpx.

The rules are the example's own (never sooner than Retry-After, backing off, the same final
states); only the waits are capped so that tests stay quick.
"""

import httpx

from examples.book_tickets import FINAL, retry_after_seconds
from examples.book_tickets import poll_until_final as _poll

__all__ = ["FINAL", "poll_until_final", "retry_after_seconds"]


def poll_until_final(client: httpx.Client, booking_id: str, *, timeout: float = 30, max_wait: float = 0.2) -> dict:
    """The booking's final state; TimeoutError when it is still pending after `timeout` seconds."""

    def get() -> tuple:
        response = client.get(f"/api/v1/bookings/{booking_id}")
        response.raise_for_status()
        return response.headers, response.json()

    booking = _poll(get, 0.0, timeout=timeout, max_wait=max_wait)
    if booking["status"] not in FINAL:
        raise TimeoutError(f"booking {booking_id} still {booking['status']} after {timeout}s")
    return booking
