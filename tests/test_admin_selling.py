"""Selling in the admin: seat categories on screens and a show's prices, written through the
catalogue services like every other admin change."""

from decimal import Decimal

import pytest

from core.models import Screen, ShowPrice
from tests.test_admin_catalogue import _errors, _screen_form, _show_form

pytestmark = pytest.mark.django_db


def test_a_screen_gets_its_seat_categories_in_the_admin(admin_client):
    form = {"name": "Hall", "rows": 4, "seats_per_row": 6, "premium_rows": "D", "accessible_seats": "A1,A6"}
    assert admin_client.post("/admin/core/screen/add/", {**form, "companion_seats": "A2,A5"}).status_code == 302
    screen = Screen.objects.get(name="Hall")
    assert (screen.premium_rows, screen.accessible_seats, screen.companion_seats) == (["D"], ["A1", "A6"], ["A2", "A5"])
    response = admin_client.post(
        f"/admin/core/screen/{screen.pk}/change/", _screen_form(screen, companion_seats="A1", premium_rows="Z")
    )
    assert "Already an accessible seat" in _errors(response)
    assert Screen.objects.get(pk=screen.pk).companion_seats == ["A2", "A5"]


def test_a_show_gets_its_prices_in_the_admin(admin_client, show):
    url = f"/admin/core/show/{show.pk}/change/"
    response = admin_client.post(url, _show_form(show, prices="child standard 6.50\nsenior premium 9"))
    assert response.status_code == 302
    assert set(ShowPrice.objects.filter(show=show).values_list("ticket_type", "seat_category", "amount")) == {
        ("child", "standard", Decimal("6.50")),
        ("senior", "premium", Decimal("9.00")),
    }
    assert "child standard 6.50" in admin_client.get(url).content.decode()
    for bad in ("child standard", "pensioner standard 3", "child balcony 3", "child standard -1", "child standard x"):
        assert "Line 1" in _errors(admin_client.post(url, _show_form(show, prices=bad)))
    assert "at most once" in _errors(
        admin_client.post(url, _show_form(show, prices="child standard 1\nchild standard 2"))
    )
    assert ShowPrice.objects.filter(show=show).count() == 2
