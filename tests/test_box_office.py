"""The box-office dashboard (/admin/box-office/): staff only, figures from aggregate queries
that match what the bookings say, SVG charts, a panel the page refreshes in place."""

import re
import statistics
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core import box_office
from core.models import Booking, WebhookDelivery  # noqa: F401 - the tables the sale writes
from core.services.cancellation import booking_cancel
from core.services.decisions import booking_decide_batch
from core.services.submission import booking_submit
from tests.factories import ScreenFactory, ShowFactory, UserFactory

pytestmark = pytest.mark.django_db


def submit(show, **kwargs) -> Booking:
    booking, _ = booking_submit(user_id=UserFactory().pk, show_id=show.pk, **kwargs)
    return booking


def decide_all(show) -> None:
    while booking_decide_batch(show_id=show.pk):
        pass


@pytest.fixture
def sale():
    """Two shows starting in two hours (one paying: its winners are held), and one tomorrow:
    a small sale with confirmed, held, failed, cancelled and pending bookings."""
    starts = timezone.now() + timedelta(hours=2)
    free_show = ShowFactory(screen=ScreenFactory(rows=2, seats_per_row=5), starts_at=starts, price=Decimal("10.00"))
    paying = ShowFactory(
        screen=ScreenFactory(rows=1, seats_per_row=4), starts_at=starts + timedelta(minutes=5), payment_required=True
    )
    other_day = ShowFactory(starts_at=starts + timedelta(days=2))
    a = submit(free_show, seats=["A1", "A2"])
    submit(free_show, seats=["A2"])  # seats_unavailable
    c = submit(free_show, quantity=3)
    submit(free_show, quantity=9)  # sold_out: 5 left
    submit(paying, quantity=2)  # held
    submit(other_day, quantity=1)
    decide_all(free_show)
    decide_all(paying)
    decide_all(other_day)
    booking_cancel(booking_id=c.pk, user=c.user)
    submit(free_show, quantity=1)  # still pending: the queue
    Booking.objects.filter(pk=a.pk).update(created_at=a.created_at - timedelta(seconds=3))  # a slow decision
    return free_show, paying, other_day


def test_the_day_figures_match_the_bookings(sale):
    free_show, paying, _ = sale
    figures = box_office.box_office_get(day=timezone.localdate(free_show.starts_at))
    assert [s.show_id for s in figures.shows] == [free_show.pk, paying.pk]
    show = figures.shows[0]
    assert (show.capacity, show.sold, show.held, show.free, show.pending) == (10, 2, 0, 8, 1)
    assert show.revenue == Decimal("20.00")
    assert show.failures == {"seats_unavailable": 1, "sold_out": 1}
    held = figures.shows[1]
    assert (held.capacity, held.sold, held.held, held.free, held.revenue) == (4, 0, 2, 2, Decimal("0.00"))
    assert (figures.sold, figures.held, figures.free, figures.pending) == (2, 2, 10, 1)
    assert figures.occupancy == pytest.approx(100 * 4 / 14)
    assert isinstance(figures.revenue, Decimal)
    assert figures.revenue == Decimal("20.00")

    decided = Booking.objects.filter(show__in=[free_show, paying], decided_at__isnull=False)
    waits = sorted((b.decided_at - b.created_at).total_seconds() * 1000 for b in decided)
    assert figures.decided == len(waits) == 5
    assert figures.latency_ms["p50"] == pytest.approx(statistics.median(waits), abs=0.01)
    # percentile_cont interpolates linearly, as statistics.quantiles(method="inclusive") does.
    cuts = statistics.quantiles(waits, n=100, method="inclusive")
    assert figures.latency_ms["p95"] == pytest.approx(cuts[94], abs=0.01)
    assert figures.latency_ms["p99"] == pytest.approx(cuts[98], abs=0.01)
    assert figures.latency_ms["p99"] > 2500  # the slow decision weighs in
    assert sum(n for _, n in figures.decided_per_minute) == 5
    assert len(figures.decided_per_minute) == box_office.RATE_WINDOW_MINUTES


def test_one_show_is_its_own_scope(sale):
    _, paying, _ = sale
    figures = box_office.box_office_get(day=timezone.localdate() + timedelta(days=30), show_id=paying.pk)
    assert [s.show_id for s in figures.shows] == [paying.pk]
    assert figures.day == timezone.localdate(paying.starts_at)
    assert figures.decided == 1


def test_a_day_without_shows_is_empty():
    figures = box_office.box_office_get(day=timezone.localdate() - timedelta(days=400))
    assert figures.shows == []
    assert (figures.sold, figures.decided, figures.decided_per_minute) == (0, 0, [])


def test_the_figures_take_five_statements_whatever_the_number_of_shows(sale):
    free_show, *_ = sale
    for _ in range(5):
        extra = ShowFactory(starts_at=free_show.starts_at + timedelta(minutes=1))
        submit(extra, quantity=1)
    with CaptureQueriesContext(connection) as queries:
        box_office.box_office_get(day=timezone.localdate(free_show.starts_at))
    assert len(queries) == 5


def test_staff_see_the_dashboard_with_charts(admin_client, sale):
    free_show, *_ = sale
    day = timezone.localdate(free_show.starts_at)
    response = admin_client.get(f"/admin/box-office/?day={day:%Y-%m-%d}")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-figure="sold">2<' in html
    assert "20.00 EUR" in html
    for chart in ("seats", "rate", "latency", "failures"):
        assert f'data-chart="{chart}"' in html
    assert re.search(r'<rect [^>]*fill="#1f6f8b" data-value="2">', html)  # the sold bar
    assert "core/box_office.js" in html
    panel = admin_client.get(f"/admin/box-office/panel/?day={day:%Y-%m-%d}")
    assert panel.status_code == 200
    assert "<html" not in panel.content.decode()
    assert 'data-figure="pending">1<' in panel.content.decode()


def test_the_admin_index_links_the_dashboard(admin_client):
    assert 'href="/admin/box-office/"' in admin_client.get("/admin/").content.decode()


def test_odd_parameters_fall_back_to_today(admin_client):
    for query in ("day=not-a-date", "day=2026-02-30", "show=abc", "show=" + "9" * 30):
        assert admin_client.get(f"/admin/box-office/?{query}").status_code == 200


@pytest.mark.parametrize("path", ["/admin/box-office/", "/admin/box-office/panel/"])
def test_only_staff_reach_it(client, path):
    anonymous = client.get(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")
    client.force_login(UserFactory())
    assert client.get(path).status_code == 302
