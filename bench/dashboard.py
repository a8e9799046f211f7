"""How long the box-office dashboard takes at millions of bookings (a manual measurement).

    BENCH_DB_NAME=booking_bench python -m bench.dashboard --rows 1000000

Creates the database BENCH_DB_NAME (dropped first, and again at the end unless --keep),
migrates it, makes 500 shows two a day (one of them a flash sale with --big-show bookings),
inserts `--rows` decided bookings over them with generate_series (80% confirmed with a
total, 10% failed with a reason, 10% cancelled; decisions 0-2 s after acceptance), runs
ANALYZE, then renders the dashboard page and its panel through Django's test client as a
superuser for a day of two ordinary shows, for the flash-sale show and for its day, and
times the same day's figures computed the naive way (by the decisions' timestamps, which
no index covers: a scan of the table). Prints the median of five runs of each.
"""

import argparse
import statistics
import time

NAIVE = """
SELECT s.status, count(*), sum(s.quantity), sum(s.total),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM s.decided_at - s.created_at))
FROM core_booking s WHERE s.decided_at >= %s AND s.decided_at < %s GROUP BY s.status
"""


def seed(cursor, *, rows: int, user_ids: list[int], show_ids: list[int], big_show: int, big_rows: int) -> None:
    for show_id, count, offset in ((None, rows - big_rows, 0), (big_show, big_rows, rows)):
        cursor.execute(
            "INSERT INTO core_booking (id, user_id, show_id, status, seats, quantity, failure_reason, "
            "idempotency_key, request_fingerprint, decide_attempts, request_id, created_at, decided_at, "
            "total, currency) "
            "SELECT gen_random_uuid(), (%s::bigint[])[1 + i %% %s], COALESCE(%s, (%s::bigint[])[1 + i %% %s]), "
            "CASE i %% 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'cancelled' ELSE 'confirmed' END, '{}', 1 + i %% 3, "
            "CASE i %% 10 WHEN 0 THEN 'sold_out' END, NULL, '', 0, '', t, t + random() * interval '2 seconds', "
            "CASE WHEN i %% 10 > 1 THEN 12.50 * (1 + i %% 3) END, 'EUR' "
            "FROM generate_series(%s + 1, %s + %s) AS i, "
            "LATERAL (SELECT now() - make_interval(secs => i %% 31536000)) AS x(t)",
            [user_ids, len(user_ids), show_id, show_ids, len(show_ids), offset, offset, count],
        )


def median_ms(action, runs: int = 5) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-show", type=int, default=100_000, help="bookings of the flash-sale show")
    parser.add_argument("--keep", action="store_true", help="keep the database (re-runs then skip seeding)")
    args = parser.parse_args()

    from bench.large_db import bench_superuser, drop_bench_database, open_bench_database

    open_bench_database(keep=args.keep)
    from datetime import timedelta

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from core.box_office import _day_bounds
    from core.models import Show
    from tests.factories import ShowFactory, UserFactory

    superuser, new_database = bench_superuser()
    if new_database:
        users = [UserFactory().pk for _ in range(200)]
        first = timezone.now().replace(hour=18, minute=0, second=0, microsecond=0) + timedelta(days=1)
        shows = [ShowFactory(starts_at=first + timedelta(days=n // 2, hours=3 * (n % 2))).pk for n in range(500)]
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")  # seeding, not what is measured
            seed(cursor, rows=args.rows, user_ids=users, show_ids=shows[1:], big_show=shows[0], big_rows=args.big_show)
            cursor.execute("ANALYZE core_booking")
            cursor.execute("RESET statement_timeout")
        print(f"seeded {args.rows:,} bookings ({args.big_show:,} on one show) in {time.monotonic() - started:.0f} s")
    ordered = list(Show.objects.order_by("starts_at", "id"))
    big, ordinary = ordered[0], ordered[100]
    big_day, ordinary_day = timezone.localdate(big.starts_at), timezone.localdate(ordinary.starts_at)

    client = Client()
    client.force_login(superuser)
    scenarios = {
        f"page, a day of 2 shows (~{args.rows // 500:,} bookings each)": f"/admin/box-office/?day={ordinary_day}",
        "panel, the same day": f"/admin/box-office/panel/?day={ordinary_day}",
        f"page, the flash-sale show ({args.big_show:,} bookings)": f"/admin/box-office/?show={big.pk}",
        "panel, the flash-sale show's day": f"/admin/box-office/panel/?day={big_day}",
    }
    print("\n| request | median of 5 (ms) | statements | slowest statement (ms) |\n|---|---|---|---|")
    for name, url in scenarios.items():
        assert client.get(url).status_code == 200, url
        with CaptureQueriesContext(connection) as queries:
            ms = median_ms(lambda url=url: client.get(url))
        slowest = max(float(q["time"]) for q in queries.captured_queries) * 1000
        print(f"| {name} | {ms:.0f} | {len(queries) // 5} | {slowest:.0f} |")

    start, end = _day_bounds(ordinary_day)

    def naive():
        with connection.cursor() as cursor:
            cursor.execute(NAIVE, [start, end])
            cursor.fetchall()

    naive()
    print(f"| naive: the day's figures by decision time (no index: a scan) | {median_ms(naive):.0f} | 1 | |")
    if not args.keep:
        drop_bench_database()


if __name__ == "__main__":
    main()
