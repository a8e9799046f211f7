"""Swagger UI in a real browser: log in, Authorize, book with "Try it out", see the 202.

Headless Chromium from Debian (tests/browser.py). The screenshots land in test-artifacts/
(gitignored).
"""

import json

import pytest

from core.models import Booking
from tests.browser import ARTIFACTS, TIMEOUT_MS, in_browser
from tests.factories import PASSWORD, ShowFactory, UserFactory
from tests.harness.service import start_web

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def web(tmp_path):
    proc, base_url = start_web(tmp_path, workers=1)
    yield base_url
    proc.stop()


def _operation(page, operation_id: str, tag: str):
    """Open one operation's panel and press "Try it out"."""
    block = page.locator(f"#operations-{tag}-{operation_id}")
    block.locator(".opblock-summary").first.click()
    block.get_by_role("button", name="Try it out").click()
    return block


def _execute(block, body: dict) -> tuple[int, dict]:
    editor = block.locator("textarea.body-param__text")
    editor.fill(json.dumps(body))
    block.get_by_role("button", name="Execute").click()
    row = block.locator(".live-responses-table tbody tr.response").first
    row.wait_for(timeout=TIMEOUT_MS)
    status = int(row.locator("td.response-col_status").inner_text().strip())
    text = row.locator(".response-col_description pre").first.inner_text()
    return status, json.loads(text)


def test_login_authorize_and_book_through_swagger_ui(chromium, web):
    user = UserFactory()
    show = ShowFactory(screen__rows=4, screen__seats_per_row=6)
    ARTIFACTS.mkdir(exist_ok=True)

    def drive(page):
        try:
            page.goto(f"{web}/swagger/")
            page.locator("#operations-auth-auth_login").wait_for()
            # The documented flow: POST /auth/login with "Try it out".
            login = _execute(_operation(page, "auth_login", "auth"), {"username": user.username, "password": PASSWORD})
            if login[0] != 200:
                return login, None
            # Authorize with the access token, as the Bearer definition describes.
            page.locator(".auth-wrapper button.authorize").click()
            dialog = page.locator(".dialog-ux")
            dialog.locator("input").first.fill(f"Bearer {login[1]['access']}")
            dialog.locator("button.modal-btn.authorize").click()  # labelled "Apply credentials"
            dialog.locator("button.btn-done").click()
            booking = _operation(page, "bookings_create", "bookings")
            created = _execute(booking, {"show": show.pk, "quantity": 2})
            booking.locator(".live-responses-table").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "swagger-booking-202.png"))
            return login, created
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "swagger-booking-failure.png"))
            (ARTIFACTS / "swagger-booking-failure.html").write_text(page.content())
            raise

    (login_status, tokens), created = in_browser(chromium, drive)
    assert login_status == 200, tokens
    assert set(tokens) == {"access", "refresh"}
    status, booking = created
    assert status == 202, booking
    assert booking["status"] == "pending"
    assert Booking.objects.filter(pk=booking["id"], user=user, show=show).exists()
