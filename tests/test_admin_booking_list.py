"""The admin's booking list stays fast as the table grows: no statement reads every booking
(no full COUNT, no filter listing every show, no date hierarchy scanning every date), and
the page itself is read from an index, newest first.

The table is seeded with 200 000 bookings in one INSERT ... generate_series (a few seconds);
`python -m bench.admin_list` measures the same pages at millions of rows."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.admin_list import seed_bookings
from core.admin.bookings import EstimatedCountPaginator
from core.models import Booking, Show
from tests.factories import ShowFactory, UserFactory

pytestmark = pytest.mark.django_db

ROWS = 200_000


@pytest.fixture
def many_bookings():
    users = [UserFactory().pk for _ in range(20)]
    shows = [ShowFactory().pk for _ in range(50)]
    with connection.cursor() as cursor:
        seed_bookings(cursor, rows=ROWS, user_ids=users, show_ids=shows)
        cursor.execute("ANALYZE core_booking")  # what autovacuum does after such an insert
    return shows


def _reads_of(table: str, queries) -> list[str]:
    return [q["sql"] for q in queries if re.search(rf'\b(FROM|JOIN) "{table}"', q["sql"])]


def _unbounded(sqls: list[str]) -> list[str]:
    # A statement over the table is bounded when it stops after a page (or the count cap).
    return [sql for sql in sqls if not re.search(r"\bLIMIT \d+", sql)]


PAGES = [{}, {"status__exact": "failed"}, {"p": "3"}, {"failure_reason__exact": "sold_out", "o": "-7"}]


def test_the_booking_list_reads_a_page_not_the_table_and_counts_nothing_in_full(admin_client, many_bookings):
    for query in PAGES:  # unfiltered, by status, a later page, by reason ordered by date
        with CaptureQueriesContext(connection) as queries:
            page = admin_client.get("/admin/core/booking/", query)
        assert page.status_code == 200
        assert len(page.context["cl"].result_list) == 100
        assert len(queries) <= 8, [q["sql"] for q in queries]
        assert _unbounded(_reads_of("core_booking", queries)) == [], query
        assert _unbounded(_reads_of("core_show", queries)) == [], "no filter lists every show"

    # The first page comes from the index on created_at, newest first.
    plan = _plans_of(admin_client, {})
    assert "booking_created_idx" in plan, plan
    assert "Seq Scan on core_booking" not in plan, plan

    # A search that names a few bookings reads them from indexes, its count too.
    booking = Booking.objects.select_related("user").order_by("pk").first()
    Booking.objects.filter(pk=booking.pk).update(request_id="req-needle", created_at=timezone.now() - timedelta(days=1))
    old = Booking.objects.filter(created_at__lt=timezone.now() - timedelta(days=30)).order_by("pk").first()
    Booking.objects.filter(pk=old.pk).update(request_id="req-old")
    for term, found in [
        (str(booking.pk), 1),
        (booking.user.username, ROWS // 20),
        (booking.user.email.upper(), ROWS // 20),
        ("req-needle", 1),
        ("req-old", 0),  # request ids are searched over the last REQUEST_ID_SEARCH_DAYS
        (str(booking.show_id), ROWS // len(many_bookings)),
    ]:
        plan = _plans_of(admin_client, {"q": term}, found=min(found, EstimatedCountPaginator.COUNT_CAP))
        assert "Seq Scan on core_booking" not in plan, (term, plan)

    # The unfiltered count is the planner's estimate; a filtered one is exact up to the cap.
    page = admin_client.get("/admin/core/booking/")
    assert abs(page.context["cl"].result_count - ROWS) < ROWS * 0.1
    filtered = admin_client.get("/admin/core/booking/", {"status__exact": "confirmed"})
    assert filtered.context["cl"].result_count == EstimatedCountPaginator.COUNT_CAP
    screen_id = Show.objects.get(pk=many_bookings[0]).screen_id  # the screen of one show
    few = admin_client.get("/admin/core/booking/", {"show__screen__id__exact": screen_id})
    assert few.context["cl"].result_count == ROWS // len(many_bookings)


def _plans_of(admin_client, query: dict, found: int | None = None) -> str:
    """The plans of the statements over core_booking that a page of the list issues."""
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get("/admin/core/booking/", query)
    if found is not None:
        assert page.context["cl"].result_count == found, query
    plans = []
    with connection.cursor() as cursor:
        for sql in _reads_of("core_booking", queries):
            if "pg_class" not in sql:
                cursor.execute(f"EXPLAIN {sql}")
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return "\n\n".join(plans)
