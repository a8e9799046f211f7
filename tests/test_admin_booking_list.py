"""The admin's booking list stays fast as the table grows: no statement reads every booking
(no full COUNT, no filter listing every show, no date hierarchy scanning every date), and
the page itself is read from an index, newest first.

The table is seeded with 200 000 bookings in one INSERT ... generate_series (a few seconds);
`python -m bench.admin_list` measures the same pages at millions of rows."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.admin_list import seed_bookings
from core.admin import EstimatedCountPaginator
from core.models import Show
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
    with CaptureQueriesContext(connection) as queries:
        admin_client.get("/admin/core/booking/")
    (page_sql,) = [sql for sql in _reads_of("core_booking", queries) if "ORDER BY" in sql]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {page_sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "booking_created_idx" in plan, plan
    assert "Seq Scan on core_booking" not in plan, plan

    # The unfiltered count is the planner's estimate; a filtered one is exact up to the cap.
    page = admin_client.get("/admin/core/booking/")
    assert abs(page.context["cl"].result_count - ROWS) < ROWS * 0.1
    filtered = admin_client.get("/admin/core/booking/", {"status__exact": "confirmed"})
    assert filtered.context["cl"].result_count == EstimatedCountPaginator.COUNT_CAP
    screen_id = Show.objects.get(pk=many_bookings[0]).screen_id  # the screen of one show
    few = admin_client.get("/admin/core/booking/", {"show__screen__id__exact": screen_id})
    assert few.context["cl"].result_count == ROWS // len(many_bookings)
