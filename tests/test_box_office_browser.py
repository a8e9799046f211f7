"""The box-office dashboard in a real browser (Debian's headless Chromium, Playwright): a
small sale decided by the real worker, the charts drawn with its numbers, and a later
booking appearing without a page reload. The screenshot lands in test-artifacts/."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser import ARTIFACTS, in_browser
from tests.factories import PASSWORD, ScreenFactory, ShowFactory, UserFactory
from tests.harness.polling import poll_until_final

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _book(client, body) -> dict:
    accepted = client.post("/api/v1/bookings", json=body)
    assert accepted.status_code == 202, accepted.text
    return poll_until_final(client, accepted.json()["id"])


def test_the_dashboard_charts_a_small_sale_and_refreshes_in_place(live_stack, chromium):
    staff = UserFactory(is_staff=True, is_superuser=True)
    show = ShowFactory(screen=ScreenFactory(rows=2, seats_per_row=5), starts_at=timezone.now() + timedelta(hours=3))
    buyers = [UserFactory() for _ in range(3)]
    with live_stack.client(buyers[0]) as a, live_stack.client(buyers[1]) as b:
        assert _book(a, {"show": show.pk, "seats": ["A1", "A2"]})["status"] == "confirmed"
        assert _book(b, {"show": show.pk, "seats": ["A2"]})["failure_reason"] == "seats_unavailable"
    url = f"{live_stack.base_url}/admin/box-office/?show={show.pk}"

    def drive(page):
        page.goto(f"{live_stack.base_url}/admin/login/?next=/admin/box-office/%3Fshow%3D{show.pk}")
        page.fill("#id_username", staff.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(url)
        seen = {
            "sold": page.locator('[data-figure="sold"]').inner_text(),
            "revenue": page.locator('[data-figure="revenue"]').inner_text(),
            "sold_bar": page.locator('svg[data-chart="seats"] rect').first.get_attribute("data-value"),
            "failure_bar": page.locator('svg[data-chart="failures"] rect').first.get_attribute("data-value"),
            "rate_bars": page.locator('svg[data-chart="rate"] rect').count(),
            "latency_bars": page.locator('svg[data-chart="latency"] rect').count(),
        }
        page.evaluate("window.__marker = 'same page'")
        # A booking made now shows up at the next refresh, on the same page (no reload).
        assert _book(late, {"show": show.pk, "quantity": 3})["status"] == "confirmed"
        page.wait_for_function("document.querySelector('[data-figure=\"sold\"]').textContent.trim() === '5'")
        seen["marker"] = page.evaluate("window.__marker")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "box-office.png"), full_page=True)
        return seen

    # Made here: the browser's thread runs an event loop, where Django refuses database calls.
    with live_stack.client(buyers[2]) as late:
        seen = in_browser(chromium, drive)
    assert seen["sold"] == "2"
    assert seen["revenue"] == "25.00 EUR"
    assert (seen["sold_bar"], seen["failure_bar"]) == ("2", "1")
    assert seen["rate_bars"] == 60
    assert seen["latency_bars"] == 3
    assert seen["marker"] == "same page"
