"""The customer booking page in a real browser, against the real processes (gunicorn and a
Celery worker on the test database, `live_stack`): sign in, pick a show and seats on the map,
choose ticket types, book, follow the booking until it is decided, pay a held one, see the QR
codes, find it in "my bookings" and cancel it; on a phone-sized screen with the keyboard only.

Headless Debian Chromium (tests/browser.py). Screenshots of each page are kept in
test-artifacts/booking-page/ (gitignored); with UPDATE_SCREENSHOTS=1 the run also copies them
to docs/screenshots/, the README's pictures.
"""

import os
import re
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.db import connection

from core.models import BookedSeat, Booking, Show, ShowPrice
from core.services.holds import holds_expire_due
from tests.browser import ARTIFACTS, in_browser
from tests.factories import PASSWORD, MovieFactory, ScreenFactory, ShowFactory, UserFactory
from tests.harness.invariants import show_violations
from tests.harness.procs import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = ARTIFACTS / "booking-page"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
DECIDED_MS = 30_000
# Prices and times as the assertions spell them.
PAGE_OPTIONS = {"locale": "en-US", "timezone_id": "UTC"}


class Watch:
    """What went wrong in the page: script errors and console errors (a CSP violation is
    one) in `problems`; every answer of 400 or more in `refusals` as (method, route,
    status), so that a test names the ones it expects (a declined card's 402 ...)."""

    def __init__(self, page):
        self.problems: list[str] = []
        self.refusals: list[tuple[str, str, int]] = []
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message):
        # Chromium also logs each refused request; those are in `refusals`.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text}")

    def _response(self, response):
        if response.status >= 400:
            route = re.sub(r"[0-9a-f-]{36}", "{id}", urlsplit(response.url).path)
            self.refusals.append((response.request.method, route, response.status))


def shot(page, name: str, *, full_page: bool = False, docs: bool = True) -> None:
    """A screenshot in test-artifacts/booking-page/; with UPDATE_SCREENSHOTS=1 also the
    README's copy (`docs`: the README shows it)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    if docs and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / f"booking-page-{name}.png")


def failure_artifacts(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-failure.png"), full_page=True)
    (SCREENSHOTS / f"{name}-failure.html").write_text(page.content())


def seat(page, label: str):
    return page.locator(f'button.seat[data-label="{label}"]')


def badge(page, status: str):
    return page.locator(".status-box .badge", has_text=status)


def sign_in(page, user) -> None:
    page.locator("#username").fill(user.username)
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator(".who", has_text=user.username).wait_for()


def wait_for_images(page, selector: str, timeout: float = 20) -> list[int]:
    """The natural widths of the images, once every one has loaded (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        widths = page.eval_on_selector_all(selector, "images => images.map(i => i.complete ? i.naturalWidth : 0)")
        if widths and all(widths):
            return widths
        if time.monotonic() > deadline:
            return widths
        time.sleep(0.2)


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than the screen (0: nothing to scroll sideways)."""
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


# ---- WCAG contrast, measured on the rendered page --------------------------------------


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def colours(page, selector: str) -> dict:
    return page.eval_on_selector(
        selector,
        """node => {
            const style = getComputedStyle(node);
            return {color: style.color, background: style.backgroundColor, border: style.borderTopColor,
                    outlineStyle: style.outlineStyle, outlineWidth: style.outlineWidth};
        }""",
    )


# ---- the paths ------------------------------------------------------------------------


@pytest.fixture
def priced_show(live_stack):
    """6 rows of 10: row F premium, A1 a wheelchair space with companion A2; adult 10.00,
    child 6.00 on standard seats (premium by the fallback: + 2.00)."""
    screen = ScreenFactory(
        rows=6, seats_per_row=10, premium_rows=["F"], accessible_seats=["A1"], companion_seats=["A2"]
    )
    movie = MovieFactory(
        title="The Last Projectionist", description="A small-town cinema's final summer.", genre="Drama", rating="PG-13"
    )
    show = ShowFactory(movie=movie, screen=screen, price=Decimal("10.00"))
    ShowPrice.objects.create(show=show, ticket_type="child", seat_category="standard", amount=Decimal("6.00"))
    return show


def test_a_customer_books_on_the_seat_map_sees_it_confirmed_and_cancels_it(chromium, live_stack, priced_show):
    show = priced_show
    user = UserFactory()

    def drive(page):
        watch = Watch(page)
        try:
            page.goto(f"{live_stack.base_url}/")
            card = page.locator(".movie-card", has=page.get_by_role("heading", name=show.movie.title))
            card.wait_for()
            shot(page, "movies")
            card.locator(f'a[href="#/shows/{show.pk}"]').click()
            seat(page, "C4").click()
            seat(page, "C5").click()
            assert seat(page, "C4").get_attribute("aria-pressed") == "true"
            page.get_by_role("button", name="One more child ticket").click()
            page.get_by_role("button", name="One fewer adult ticket").click()
            estimate = page.locator(".estimate strong").inner_text()
            title = page.title()
            seat(page, "C5").focus()
            shot(page, "seat-map")
            # Not signed in yet: the page asks, then comes back to the same choice.
            page.locator("#book").click()
            page.locator("#username").wait_for()
            shot(page, "sign-in")
            sign_in(page, user)
            assert seat(page, "C5").get_attribute("aria-pressed") == "true"
            assert page.locator("#tickets-child").input_value() == "1"
            page.locator("#book").click()
            badge(page, "Confirmed").wait_for(timeout=DECIDED_MS)
            reference = page.locator(".status-box .reference").inner_text()
            total = page.locator(".total strong").inner_text()
            lines = page.locator("table.lines tbody tr").all_inner_texts()
            qr_widths = wait_for_images(page, "img.qr")
            shot(page, "booking-confirmed", full_page=True)

            page.get_by_role("link", name="My bookings", exact=True).click()
            item = page.locator(".booking-item", has_text=reference)
            item.locator(".badge", has_text="Confirmed").wait_for()
            shot(page, "my-bookings")
            item.get_by_role("button", name=f"Cancel the booking for {show.movie.title}").click()
            item.locator(".badge", has_text="Cancelled").wait_for()
            return {
                "estimate": estimate,
                "title": title,
                "reference": reference,
                "total": total,
                "lines": lines,
                "qr_widths": qr_widths,
                "problems": watch.problems,
                "refusals": watch.refusals,
            }
        except Exception:
            failure_artifacts(page, "book-and-cancel")
            raise

    seen = in_browser(chromium, drive, viewport=LAPTOP, **PAGE_OPTIONS)
    assert seen["problems"] == []
    assert seen["refusals"] == []
    assert seen["title"] == "The Last Projectionist · Cinema"
    booking = Booking.objects.get(user=user)
    assert booking.status == Booking.Status.CANCELLED
    assert booking.confirmed_at is not None
    assert booking.cancelled_at is not None
    assert booking.seats == ["C4", "C5"]
    assert booking.reference == seen["reference"]
    # The page shows the decided booking's prices: C4 adult, C5 child, as the API sold them.
    assert sorted((line.seat_label, line.ticket_type, line.amount) for line in booking.sold_lines) == [
        ("C4", "adult", Decimal("10.00")),
        ("C5", "child", Decimal("6.00")),
    ]
    assert booking.total == Decimal("16.00")
    assert seen["total"] == seen["estimate"].removeprefix("Estimated total: ") == "€16.00"
    assert [re.sub(r"\s+", " ", line).strip() for line in seen["lines"]] == [
        "C4 Standard Adult €10.00",
        "C5 Standard Child €6.00",
    ]
    assert len(seen["qr_widths"]) == 2, "one QR image per seat"
    assert all(seen["qr_widths"]), seen["qr_widths"]
    assert not BookedSeat.objects.filter(booking=booking).exists()
    violations, _ = show_violations(connection, show.pk)
    assert violations == []


def test_a_paying_show_holds_the_seats_until_paid_shows_the_qr_codes_and_refunds_a_cancel(
    chromium, live_stack, priced_show
):
    show = priced_show
    Show.objects.filter(pk=show.pk).update(payment_required=True)
    user = UserFactory()

    def drive(page):
        watch = Watch(page)
        seen = {"problems": watch.problems, "refusals": watch.refusals}
        try:
            page.goto(f"{live_stack.base_url}/#/signin")
            sign_in(page, user)
            page.goto(f"{live_stack.base_url}/#/shows/{show.pk}")
            seat(page, "F5").click()  # premium: 10.00 + 2.00
            page.locator("#book").click()
            badge(page, "Held").wait_for(timeout=DECIDED_MS)
            seen["countdown"] = page.locator(".countdown").inner_text()
            seen["pay_button"] = page.get_by_role("button", name=re.compile("^Pay")).inner_text()
            shot(page, "booking-held", full_page=True)
            # A declined card leaves the booking held, and says so.
            page.get_by_label(re.compile("declined")).check()
            page.get_by_role("button", name=re.compile("^Pay")).click()
            declined = page.locator(".pay-form .form-error")
            declined.wait_for()
            seen["declined"] = declined.inner_text()
            seen["held_after_decline"] = badge(page, "Held").is_visible()
            page.get_by_label(re.compile("pays at once")).check()
            page.get_by_role("button", name=re.compile("^Pay")).click()
            badge(page, "Confirmed").wait_for(timeout=DECIDED_MS)
            seen["qr"] = wait_for_images(page, "img.qr")
            shot(page, "paid-tickets", full_page=True, docs=False)
            page.get_by_role("link", name="My bookings", exact=True).click()
            item = page.locator(".booking-item", has=page.locator(".badge", has_text="Confirmed"))
            # Cancelled well before the show: the payment is refunded through the provider.
            item.get_by_role("link").click()
            page.get_by_role("button", name="Cancel booking").click()
            page.get_by_role("button", name="Yes, cancel it").click()
            badge(page, "Cancelled").wait_for()
            seen["refund"] = page.locator(".status-box", has_text="Refund").inner_text()
            return seen
        except Exception:
            failure_artifacts(page, "pay")
            raise

    seen = in_browser(chromium, drive, viewport=LAPTOP, **PAGE_OPTIONS)
    assert seen["problems"] == []
    assert re.fullmatch(r"Pay within (9|10):\d\d \(the hold ends at .+\)\.", seen["countdown"]), seen["countdown"]
    assert seen["pay_button"] == "Pay €12.00"
    booking = Booking.objects.get(user=user)
    assert booking.seats == ["F5"]
    assert booking.total == Decimal("12.00")
    assert seen["refusals"] == [("POST", "/api/v1/bookings/{id}/pay", 402)]
    assert "declined" in seen["declined"].lower()
    assert seen["held_after_decline"]
    assert len(seen["qr"]) == 1, "one QR image per seat"
    assert all(width > 0 for width in seen["qr"]), seen["qr"]
    assert booking.confirmed_at is not None
    assert booking.status == Booking.Status.CANCELLED
    assert re.search(r"Refund: €12\.00 \(\w+\)\.", seen["refund"]), seen["refund"]
    violations, _ = show_violations(connection, show.pk)
    assert violations == []


def test_on_a_phone_with_the_keyboard_only(chromium, live_stack, priced_show):
    """Sign up, pick seats with the arrow keys and Space, book with Enter; nothing wider than
    the screen; the focus is visible; text and seats have WCAG AA contrast."""
    show = priced_show
    username = f"phone{uuid.uuid4().hex[:8]}"

    def tab_to(page, predicate: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(predicate):
                return
        raise AssertionError(f"{predicate} never took the focus in {limit} tabs")

    def drive(page):
        watch = Watch(page)
        overflow = {}
        try:
            page.goto(f"{live_stack.base_url}/#/signup")
            page.locator("#username").fill(username)
            page.locator("#email").fill(f"{username}@example.com")
            page.locator("#password").fill("a-long-pass-phrase-42")
            page.locator("#password").press("Enter")
            page.locator(".who", has_text=username).wait_for()
            page.locator(".movie-card").first.wait_for()
            overflow["movies"] = horizontal_overflow(page)

            page.goto(f"{live_stack.base_url}/#/shows/{show.pk}")
            page.locator(".seat-map").wait_for()
            # One tab stop for the map: it lands on the first free seat (A1), arrows move.
            tab_to(page, "() => document.activeElement.classList.contains('seat')")
            first = page.evaluate("() => document.activeElement.dataset.label")
            for key in ("ArrowDown", "ArrowDown", "ArrowRight", "ArrowRight"):
                page.keyboard.press(key)
            page.keyboard.press("Space")
            page.keyboard.press("ArrowRight")
            page.keyboard.press("Enter")
            focused = colours(page, "button.seat:focus")
            picked = page.eval_on_selector_all(
                "button.seat[aria-pressed=true]", "nodes => nodes.map(n => n.dataset.label)"
            )
            overflow["show"] = horizontal_overflow(page)
            shot(page, "phone-seat-map")
            tab_to(page, "() => document.activeElement.id === 'book'")
            page.keyboard.press("Enter")
            badge(page, "Confirmed").wait_for(timeout=DECIDED_MS)
            overflow["booking"] = horizontal_overflow(page)
            badge_colours = colours(page, ".status-box .badge")
            shot(page, "phone-booking", full_page=True)

            # The map again: the booked seats taken, one chosen, every category on show.
            page.goto(f"{live_stack.base_url}/#/shows/{show.pk}")
            seat(page, "D1").click()
            palette = {
                name: colours(page, selector)
                for name, selector in {
                    "standard": 'button.seat[data-label="E1"]',
                    "premium": 'button.seat[data-label="F1"]',
                    "accessible": 'button.seat[data-label="A1"]',
                    "companion": 'button.seat[data-label="A2"]',
                    "taken": 'button.seat[data-label="C3"]',
                    "selected": 'button.seat[data-label="D1"]',
                    "book": "#book",
                    "muted": ".meta",
                    "body": "main p",
                }.items()
            }
            palette["badge"] = badge_colours
            return {"first": first, "picked": picked, "focused": focused, "overflow": overflow, "palette": palette,
                    "problems": watch.problems, "refusals": watch.refusals}  # fmt: skip
        except Exception:
            failure_artifacts(page, "phone")
            raise

    seen = in_browser(chromium, drive, viewport=PHONE, is_mobile=True, has_touch=True, **PAGE_OPTIONS)
    assert seen["problems"] == []
    assert seen["refusals"] == []
    assert seen["first"] == "A1"
    assert seen["picked"] == ["C3", "C4"]
    assert seen["focused"]["outlineStyle"] == "solid"
    assert seen["focused"]["outlineWidth"] == "3px"
    assert seen["overflow"] == {"movies": 0, "show": 0, "booking": 0}
    booking = Booking.objects.get(user__username=username)
    assert booking.status == Booking.Status.CONFIRMED
    assert booking.seats == ["C3", "C4"]

    white = "rgb(255, 255, 255)"
    for name, style in seen["palette"].items():
        # Text on its own background (a transparent one shows the white page).
        background = white if style["background"] in ("rgba(0, 0, 0, 0)", "transparent") else style["background"]
        assert contrast(style["color"], background) >= 4.5, (name, style)
        if name in ("standard", "premium", "accessible", "companion", "taken", "selected"):
            # A seat's outline against the page (WCAG 1.4.11, non-text contrast).
            assert contrast(style["border"], white) >= 3, (name, style)


def test_an_expired_access_token_is_refreshed_once_and_a_dead_session_asks_to_sign_in(chromium, live_stack):
    user = UserFactory()
    tokens_key = "booking-page.tokens"

    def stored(page) -> dict:
        return page.evaluate(f"() => JSON.parse(sessionStorage.getItem('{tokens_key}'))")

    def spoil(page, **tokens) -> None:
        # What a token past its lifetime looks like to the API: one it refuses with a 401.
        # On the public page, so that the reload sends no token.
        page.goto(f"{live_stack.base_url}/#/")
        page.locator(".movie-list, main > p").first.wait_for()
        page.evaluate(
            """([key, tokens]) => {
                sessionStorage.setItem(key, JSON.stringify({...JSON.parse(sessionStorage.getItem(key)), ...tokens}));
            }""",
            [tokens_key, tokens],
        )
        page.reload()  # the page reads its tokens from sessionStorage when it starts

    def drive(page):
        watch = Watch(page)
        calls = []
        page.on("request", lambda request: calls.append(f"{request.method} {request.url.split('/api/v1', 1)[-1]}"))
        try:
            page.goto(f"{live_stack.base_url}/#/signin")
            sign_in(page, user)
            before = stored(page)
            spoil(page, access="expired")
            calls.clear()
            page.goto(f"{live_stack.base_url}/#/bookings")
            page.get_by_role("heading", name="My bookings").wait_for()
            page.locator(".booking-list .empty").wait_for()
            refreshed = {"calls": list(calls), "before": before, "after": stored(page)}
            spoil(page, access="expired", refresh="revoked")
            page.goto(f"{live_stack.base_url}/#/bookings")
            page.get_by_role("heading", name="Sign in").wait_for()
            dead = {"url": page.url, "stored": stored(page), "account": page.locator("#account").inner_text()}
            return {"refreshed": refreshed, "dead": dead, "problems": watch.problems, "refusals": watch.refusals}
        except Exception:
            failure_artifacts(page, "refresh")
            raise

    seen = in_browser(chromium, drive, viewport=LAPTOP, **PAGE_OPTIONS)
    assert seen["problems"] == []
    assert seen["refusals"] == [
        ("GET", "/api/v1/bookings", 401),  # the spoiled access token, refreshed
        ("GET", "/api/v1/bookings", 401),  # both spoiled: the refresh is refused too
        ("POST", "/api/v1/auth/refresh", 401),
    ]
    refreshed = seen["refreshed"]
    assert [call for call in refreshed["calls"] if "/auth/" in call or call.startswith("GET /bookings")] == [
        "GET /bookings?page_size=20",
        "POST /auth/refresh",
        "GET /bookings?page_size=20",
    ]
    assert refreshed["after"]["refresh"] != refreshed["before"]["refresh"]  # rotated
    assert refreshed["after"]["access"] not in ("expired", refreshed["before"]["access"])
    dead = seen["dead"]
    assert dead["url"].endswith("#/signin?next=%23%2Fbookings")
    assert dead["stored"] is None
    assert dead["account"] == "Sign in"


def test_a_hold_that_ran_out_shows_expired_and_its_seats_free_again(chromium, live_stack, priced_show):
    show = priced_show
    Show.objects.filter(pk=show.pk).update(payment_required=True)
    user = UserFactory()

    def run_out(booking_id: str) -> int:
        # The expiry job's service, run as if its deadline had passed (in a thread of its
        # own: Playwright's event loop runs in this one).
        def expire():
            try:
                deadline = Booking.objects.get(pk=booking_id).hold_expires_at
                return holds_expire_due(now=deadline + timedelta(seconds=1))
            finally:
                connection.close()  # this thread's own connection, or the test database stays in use

        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(expire).result(timeout=30)

    def drive(page):
        watch = Watch(page)
        try:
            page.goto(f"{live_stack.base_url}/#/signin")
            sign_in(page, user)
            page.goto(f"{live_stack.base_url}/#/shows/{show.pk}")
            seat(page, "D7").click()
            page.locator("#book").click()
            badge(page, "Held").wait_for(timeout=DECIDED_MS)
            booking_id = page.url.rsplit("/", 1)[1]
            expired = run_out(booking_id)
            page.reload()
            badge(page, "Expired").wait_for()
            message = page.locator(".status-box").inner_text()
            offers = {
                "pay": page.locator(".pay-form").count(),
                "cancel": page.get_by_role("button", name="Cancel booking").count(),
            }
            page.goto(f"{live_stack.base_url}/#/shows/{show.pk}")
            free = seat(page, "D7").get_attribute("aria-label")
            return {
                "expired": expired,
                "message": message,
                "offers": offers,
                "free": free,
                "problems": watch.problems,
                "refusals": watch.refusals,
            }
        except Exception:
            failure_artifacts(page, "expired")
            raise

    seen = in_browser(chromium, drive, viewport=LAPTOP, **PAGE_OPTIONS)
    assert seen["problems"] == []
    assert seen["refusals"] == []
    assert seen["expired"] == 1
    assert "The hold ended before payment; the seats were released." in seen["message"]
    assert seen["offers"] == {"pay": 0, "cancel": 0}
    assert seen["free"] == "D7, Standard, adult €10.00"
    assert Booking.objects.get(user=user).status == Booking.Status.EXPIRED
    violations, _ = show_violations(connection, show.pk)
    assert violations == []


def test_a_card_that_confirms_a_moment_later_is_followed_until_confirmed(chromium, live_stack, priced_show):
    """tok_async_ok: the pay call answers 202 and the provider calls the webhook later; the
    page keeps polling the held booking until it is confirmed (on a phone, this time)."""
    show = priced_show
    Show.objects.filter(pk=show.pk).update(payment_required=True)
    user = UserFactory()

    def drive(page):
        watch = Watch(page)
        try:
            page.goto(f"{live_stack.base_url}/#/signin")
            sign_in(page, user)
            page.goto(f"{live_stack.base_url}/#/shows/{show.pk}")
            seat(page, "B2").click()
            seat(page, "B3").click()
            page.locator("#book").click()
            badge(page, "Held").wait_for(timeout=DECIDED_MS)
            page.get_by_label(re.compile("confirms a moment later")).check()
            page.get_by_role("button", name=re.compile("^Pay")).click()
            page.locator(".status-box", has_text="The payment is being processed").wait_for()
            badge(page, "Confirmed").wait_for(timeout=DECIDED_MS)
            qr = wait_for_images(page, "img.qr")
            overflow = horizontal_overflow(page)
            return {"qr": qr, "overflow": overflow, "problems": watch.problems, "refusals": watch.refusals}
        except Exception:
            failure_artifacts(page, "async-pay")
            raise

    seen = in_browser(chromium, drive, viewport=PHONE, is_mobile=True, has_touch=True, **PAGE_OPTIONS)
    assert seen["problems"] == []
    assert seen["refusals"] == []
    assert seen["overflow"] == 0
    assert len(seen["qr"]) == 2, "one QR image per seat"
    assert all(width > 0 for width in seen["qr"]), seen["qr"]
    booking = Booking.objects.get(user=user)
    assert booking.status == Booking.Status.CONFIRMED
    assert booking.seats == ["B2", "B3"]
    violations, _ = show_violations(connection, show.pk)
    assert violations == []
