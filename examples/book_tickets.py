#!/usr/bin/env python3
"""Book seats through the booking API, the way a well-behaved client does.

Copy this file: it needs nothing but Python 3.9+. Against `make run`:

    python3 examples/book_tickets.py                       # demo user, first show, 2 seats
    python3 examples/book_tickets.py --seats E7,E8 --show 3
    python3 examples/book_tickets.py --username ada --password 'a-long-passphrase' --signup

What it shows:
  1. log in (or sign up first), keeping the refresh token for when the access token expires;
  2. list the upcoming shows and pick one with enough free seats;
  3. submit the booking with an Idempotency-Key, so a retry after a timeout, a 429 or a 503
     can never book twice (the same key returns the same booking);
  4. poll the booking's Location, waiting at least the Retry-After the server asks for (it
     grows with the booking's queue_position, the bookings of its show ahead of it) and
     backing off, until it is final;
  5. on a show that takes payment, the booking is `held` until paid: pay it with an
     Idempotency-Key (one charge however often it is retried): 200 paid, 202 the provider
     still deciding (ask again with the same key), 402 declined, 409 hold_expired;
  6. handle every final status: confirmed, failed (with its reason), cancelled and expired;
  7. once confirmed, fetch the tickets: one signed code per seat and the URL of its QR code
     image (what the holder shows at the door; the image needs no token).

Exit status: 0 confirmed, 2 failed, 3 cancelled, 4 still pending when --timeout ran out (poll
the same booking again later: it will be decided), 5 payment declined (the booking stays
held until its hold_expires_at: pay again), 6 the hold expired unpaid, 1 any other error.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request
import uuid

FINAL = {"confirmed", "failed", "cancelled", "expired"}
# A paying show's won booking waits for its payment, not for a worker: stop polling and pay.
DECIDED = FINAL | {"held"}
# What to tell a user about each failure_reason (the API may add rarer ones later).
REASONS = {
    "seats_unavailable": "one of the seats you asked for was taken first; pick other seats",
    "sold_out": "fewer seats are free than you asked for",
    "show_started": "the show started before your booking was decided",
    "show_cancelled": "the show was cancelled",
    "processing_error": "the booking could not be processed; try again or contact support",
}


class ApiError(Exception):
    """An error answer: every one has a stable `code`, a `message` and field `details`."""

    def __init__(self, status: int, body: dict, *, request_id: str = "", retry_after: str | None = None):
        self.status, self.code = status, body.get("code", "error")
        self.details, self.request_id, self.retry_after = body.get("details", {}), request_id, retry_after
        super().__init__(f"{status} {self.code}: {body.get('message', '')} {self.details or ''}".strip())


class Client:
    def __init__(self, base_url: str, *, retries: int = 5):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"Not an http(s) URL: {base_url}")
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.access = self.refresh = None

    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        """One API call -> (status, headers, JSON body). Retries what is safe to retry: 429
        and 503 (honouring Retry-After) and network errors, with exponential backoff. A POST
        is only retried when it carries an Idempotency-Key."""
        retriable = method in ("GET", "DELETE") or (headers and "Idempotency-Key" in headers)
        for attempt in range(self.retries + 1):
            try:
                return self._send(method, path, body, headers)
            except ApiError as error:
                if error.status == 401 and self.refresh and path != "/api/v1/auth/refresh":
                    self._refresh_tokens()  # the access token expired: refresh, then try again
                    continue
                if error.status not in (429, 503) or attempt == self.retries:
                    raise
                wait = retry_after_seconds({"Retry-After": error.retry_after}, backoff(attempt))
            except urllib.error.URLError:
                if not retriable or attempt == self.retries:
                    raise
                wait = backoff(attempt)
            print(f"  ... retrying {method} {path} in {wait:.1f}s")
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _send(self, method, path, body, headers):
        request = urllib.request.Request(self.base_url + path, method=method)  # noqa: S310 - http(s) only, see __init__
        request.add_header("Accept", "application/json")
        # Our own request id: the server logs it, returns it, and support can trace it.
        request.add_header("X-Request-ID", uuid.uuid4().hex)
        if self.access:
            request.add_header("Authorization", f"Bearer {self.access}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        try:
            # (nosec B310: the scheme is checked to be http or https in __init__.)
            with urllib.request.urlopen(request, data=data, timeout=10) as response:  # noqa: S310  # nosec B310
                payload = response.read()
                return response.status, response.headers, json.loads(payload) if payload else {}
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                parsed = json.loads(payload) if payload else {}
            except ValueError:
                parsed = {"message": payload[:200].decode(errors="replace")}
            raise ApiError(
                error.code,
                parsed,
                request_id=error.headers.get("X-Request-ID", ""),
                retry_after=error.headers.get("Retry-After"),
            ) from None

    # ---- auth ----------------------------------------------------------------------------

    def log_in(self, username: str, password: str, *, signup: bool = False, email: str | None = None) -> None:
        try:
            _, _, tokens = self.call("POST", "/api/v1/auth/login", {"username": username, "password": password})
        except ApiError as error:
            if error.status != 401 or not signup:
                raise
            print(f"No account {username!r} yet: signing up.")
            self.call(
                "POST",
                "/api/v1/auth/signup",
                {"username": username, "email": email or f"{username}@example.com", "password": password},
            )
            _, _, tokens = self.call("POST", "/api/v1/auth/login", {"username": username, "password": password})
        self.access, self.refresh = tokens["access"], tokens["refresh"]

    def _refresh_tokens(self) -> None:
        self.access = None
        _, _, tokens = self.call("POST", "/api/v1/auth/refresh", {"refresh": self.refresh})
        # Refresh tokens rotate: the old one is now blacklisted, keep the new one.
        self.access, self.refresh = tokens["access"], tokens["refresh"]

    # ---- bookings ------------------------------------------------------------------------

    def pick_show(self, quantity: int) -> dict:
        _, _, page = self.call("GET", "/api/v1/shows?page_size=100")
        for show in page["results"]:
            if show["available_seats"] >= quantity:
                return show
        raise SystemExit("No upcoming show has enough free seats.")

    def submit(self, show_id: int, *, seats: list[str] | None, quantity: int | None) -> tuple[dict, str, float]:
        body = {"show": show_id, **({"seats": seats} if seats else {"quantity": quantity})}
        # One key per booking intent, reused by every retry of this submission.
        key = str(uuid.uuid4())
        _, headers, booking = self.call("POST", "/api/v1/bookings", body, {"Idempotency-Key": key})
        print(
            f"Accepted: booking {booking['id']} is {booking['status']}{ahead(booking)} "
            f"(request id {headers['X-Request-ID']})."
        )
        return booking, headers["Location"], retry_after_seconds(headers)

    def tickets(self, booking_id: str) -> list[dict]:
        """The tickets of a confirmed booking: [{"seat", "ticket_type", "code", "qr"}]."""
        return self.call("GET", f"/api/v1/bookings/{booking_id}/tickets")[2]

    def wait_until_decided(self, location: str, retry_after: float, *, timeout: float) -> dict:
        return poll_until_final(
            lambda: self.call("GET", location)[1:],
            retry_after,
            timeout=timeout,
            until=DECIDED,
            on_pending=lambda booking: print(f"  still {booking['status']}{ahead(booking)}..."),
        )

    def pay(self, booking: dict, token: str, *, timeout: float) -> dict:
        """Pay a held booking: returns it confirmed. Raises ApiError 402 (declined) or 409
        (hold_expired, ...). One Idempotency-Key for this payment: a retry after a timeout or
        a 503, and every "is it decided yet?" while the provider decides (202), is the same
        charge."""
        print(f"Held until {booking['hold_expires_at']}: paying {booking['total']} {booking['currency']}.")
        key = str(uuid.uuid4())
        path = f"/api/v1/bookings/{booking['id']}/pay"
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            status, _, booking = self.call("POST", path, {"payment_token": token}, {"Idempotency-Key": key})
            if status == 200 or time.monotonic() > deadline:
                return booking
            print("  the payment provider is still deciding...")
            time.sleep(backoff(attempt, base=0.5, cap=5))
            attempt += 1


def poll_until_final(
    get, retry_after: float, *, timeout: float, max_wait: float | None = None, on_pending=None, until=FINAL
):
    """Poll a booking until its status is in `until` (final) or `timeout` seconds passed;
    returns its last state.

    get() -> (headers, booking) fetches it once. Never poll sooner than the server asks
    (Retry-After), and back off further the longer it takes. `max_wait` bounds each wait
    below that (only for a test that wants to be quick).
    """
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        wait = max(retry_after, backoff(attempt, base=0.5, cap=10))
        time.sleep(wait if max_wait is None else min(wait, max_wait))
        headers, booking = get()
        if booking["status"] in until or time.monotonic() > deadline:
            return booking
        if on_pending is not None:
            on_pending(booking)
        retry_after = retry_after_seconds(headers)
        attempt += 1


def retry_after_seconds(headers, default: float = 1.0) -> float:
    """The seconds a Retry-After header asks for (this API sends whole seconds), or `default`."""
    try:
        return float(headers.get("Retry-After") or default)
    except ValueError:
        return default


def ahead(booking: dict) -> str:
    # queue_position: how many bookings of the show are decided before this one (pending only).
    position = booking.get("queue_position")
    return f", {position} ahead" if position is not None else ""


def backoff(attempt: int, *, base: float = 0.5, cap: float = 8.0) -> float:
    """Exponential backoff with jitter: about base, 2*base, 4*base, ... up to cap."""
    ceiling = min(cap, base * 2**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("BOOKING_API_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--username", default=os.environ.get("BOOKING_USERNAME", "demo"))
    parser.add_argument("--password", default=os.environ.get("BOOKING_PASSWORD", "demo-pass-123"))
    parser.add_argument("--signup", action="store_true", help="create the account if logging in fails")
    parser.add_argument("--show", type=int, help="show id (default: the first upcoming show with room)")
    parser.add_argument("--seats", help="exact seats, comma-separated (e.g. E7,E8)")
    parser.add_argument("--quantity", type=int, default=2, help="best available seats (default 2)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to keep polling")
    parser.add_argument(
        "--payment-token",
        default="tok_ok",
        help="pays a held booking: the payment method from your provider's client-side form "
        "(the development server's fake provider: tok_ok, tok_declined, tok_async_ok, tok_async_fail)",
    )
    args = parser.parse_args(argv)
    seats = [label.strip() for label in args.seats.split(",")] if args.seats else None

    client = Client(args.base_url)
    try:
        client.log_in(args.username, args.password, signup=args.signup)
        print(f"Logged in as {args.username}.")
        show = {"id": args.show} if args.show else client.pick_show(len(seats) if seats else args.quantity)
        if not args.show:
            print(f"Show {show['id']} starts {show['starts_at']}, {show['available_seats']} seats free.")
        booking, location, retry_after = client.submit(show["id"], seats=seats, quantity=args.quantity)
        booking = client.wait_until_decided(location, retry_after, timeout=args.timeout)
        if booking["status"] == "held":
            booking = client.pay(booking, args.payment_token, timeout=args.timeout)
    except ApiError as error:
        if error.code == "payment_declined":
            print(f"Payment declined: {error}. The booking stays held until its deadline: pay with another card.")
            return 5
        if error.code == "hold_expired":
            print("Expired: the hold ran out before it was paid; its seats are free again.")
            return 6
        print(f"Error: {error} (request id {error.request_id})", file=sys.stderr)
        return 1
    except urllib.error.URLError as error:
        print(f"Cannot reach {args.base_url}: {error.reason}", file=sys.stderr)
        return 1

    status = booking["status"]
    if status == "confirmed":
        print(f"Confirmed: seats {', '.join(booking['seats'])} (booking {booking['id']}).")
        try:
            for ticket in client.tickets(booking["id"]):
                # The code is the ticket: keep it safe, show it (or its QR code) at the door.
                print(f"  Ticket {ticket['seat']} ({ticket['ticket_type']}): {ticket['code']}  QR {ticket['qr']}")
        except ApiError as error:
            print(f"Error fetching the tickets: {error} (request id {error.request_id})", file=sys.stderr)
            return 1
        return 0
    if status == "expired":
        print("Expired: the hold ran out before it was paid; its seats are free again.")
        return 6
    if status == "failed":
        reason = booking["failure_reason"]
        print(f"Failed ({reason}): {REASONS.get(reason, 'see failure_reason')}.")
        return 2
    if status == "cancelled":
        print("Cancelled: the booking was cancelled (by you, staff, or with its show); its seats are free.")
        return 3
    print(f"Still {status} after {args.timeout:.0f}s: poll {location} again later; it will be decided.")
    return 4


if __name__ == "__main__":
    sys.exit(main())
