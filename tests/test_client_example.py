"""examples/book_tickets.py, run as a client author would run it, against the live stack."""

import subprocess
import sys

import httpx
import pytest

from core import tickets
from core.models import Booking
from tests.factories import ShowFactory
from tests.harness.procs import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCRIPT = ROOT / "examples" / "book_tickets.py"


def run_example(live_stack, *args: str) -> subprocess.CompletedProcess:
    # -I -S: no site-packages, no PYTHONPATH; the example needs only the standard library.
    return subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), "--base-url", live_stack.base_url, "--timeout", "30", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_the_example_signs_up_books_polls_and_reports_each_final_status(live_stack):
    show = ShowFactory(screen__rows=2, screen__seats_per_row=4)
    account = ["--username", "example-author", "--password", "a-long-passphrase-42", "--signup"]

    booked = run_example(live_stack, *account, "--show", str(show.pk), "--quantity", "2")
    assert booked.returncode == 0, booked.stdout + booked.stderr
    assert "signing up" in booked.stdout
    assert "Confirmed: seats" in booked.stdout
    # Its tickets: one per seat, each code with the URL of its QR code, which loads without a token.
    ticket_lines = [line for line in booked.stdout.splitlines() if line.strip().startswith("Ticket ")]
    assert len(ticket_lines) == 2
    for line in ticket_lines:
        code, qr = line.split(": ", 1)[1].split("  QR ")
        assert tickets.ticket_id_from_code(code) is not None
        assert qr == f"{live_stack.base_url}/api/v1/tickets/{code}/qr.png"
        with httpx.Client() as anonymous:
            image = anonymous.get(qr)
        assert (image.status_code, image.headers["content-type"]) == (200, "image/png")

    # The same user again (now logging in), asking for a seat the first booking holds.
    mine = Booking.objects.get(user__username="example-author")
    assert mine.status == "confirmed"
    assert mine.idempotency_key  # sent with an Idempotency-Key
    taken = run_example(live_stack, *account, "--show", str(show.pk), "--seats", mine.seats[0])
    assert taken.returncode == 2, taken.stdout + taken.stderr
    assert "signing up" not in taken.stdout
    assert "Failed (seats_unavailable)" in taken.stdout

    # More seats than are left: sold out.
    sold_out = run_example(live_stack, *account, "--show", str(show.pk), "--quantity", "7")
    assert sold_out.returncode == 2, sold_out.stdout + sold_out.stderr
    assert "Failed (sold_out)" in sold_out.stdout


def test_the_example_reports_api_errors_with_their_code_and_request_id(live_stack):
    show = ShowFactory(screen__rows=2, screen__seats_per_row=4)
    result = run_example(
        live_stack, "--username", "nobody-here", "--password", "wrong-password-1", "--show", str(show.pk)
    )
    assert result.returncode == 1
    assert "401" in result.stderr
    assert "request id" in result.stderr


def test_the_example_pays_a_held_booking_and_reports_a_declined_card(live_stack):
    show = ShowFactory(payment_required=True, screen__rows=2, screen__seats_per_row=4)
    account = ["--username", "example-payer", "--password", "a-long-passphrase-42", "--signup"]

    paid = run_example(live_stack, *account, "--show", str(show.pk), "--quantity", "2")
    assert paid.returncode == 0, paid.stdout + paid.stderr
    assert "Held until" in paid.stdout
    assert "Confirmed: seats" in paid.stdout

    # An asynchronous payment: 202 until the provider's webhook (over HTTP) has decided it.
    later = run_example(
        live_stack, *account, "--show", str(show.pk), "--quantity", "1", "--payment-token", "tok_async_ok"
    )
    assert later.returncode == 0, later.stdout + later.stderr
    assert "still deciding" in later.stdout

    declined = run_example(
        live_stack, *account, "--show", str(show.pk), "--quantity", "1", "--payment-token", "tok_declined"
    )
    assert declined.returncode == 5, declined.stdout + declined.stderr
    assert "Payment declined" in declined.stdout
    statuses = sorted(Booking.objects.filter(user__username="example-payer").values_list("status", flat=True))
    assert statuses == ["confirmed", "confirmed", "held"]
