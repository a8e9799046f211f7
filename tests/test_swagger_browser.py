"""Swagger UI in a real browser: log in, Authorize, book with "Try it out", see the 202.

Headless Chromium from Debian (`make test` installs it with apt-get when it is missing),
driven by Playwright without Playwright's own browser download. The screenshots land in
test-artifacts/ (gitignored).
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.models import Booking
from tests.factories import PASSWORD, ShowFactory, UserFactory
from tests.harness.procs import ROOT
from tests.harness.service import start_web

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 20_000


@pytest.fixture
def chromium():
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: `make test` installs Debian's chromium with apt-get when it can")
    return CHROMIUM


def in_browser(chromium: Path, drive):
    """Run `drive(page)` in headless Chromium, in a thread of its own: Playwright's sync API
    runs an event loop, and Django refuses database calls in a thread that has one."""
    from playwright.sync_api import sync_playwright

    def run():
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1800})
                page.set_default_timeout(TIMEOUT_MS)
                return drive(page)
            finally:
                browser.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=120)


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
