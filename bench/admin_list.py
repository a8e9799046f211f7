"""How long the admin's booking list takes at millions of bookings (a manual measurement).

    BENCH_DB_NAME=booking_bench python -m bench.admin_list --rows 5000000

Creates the database BENCH_DB_NAME (dropped first if it exists, dropped again at the end
unless --keep), migrates it, inserts `--rows` decided bookings with generate_series, runs
ANALYZE (as autovacuum would), then renders the admin's booking list pages through Django's
test client as a superuser and prints, per page, the median time of five renders and the
statements issued. `make bench-admin` runs it with ROWS=5000000.
"""

import argparse
import statistics
import time

SCENARIOS = {
    "list, first page": "/admin/core/booking/",
    "list, page 50": "/admin/core/booking/?p=50",
    "status=failed": "/admin/core/booking/?status__exact=failed",
    "search show id": "/admin/core/booking/?q={show_id}",
    "search booking id": "/admin/core/booking/?q={booking_id}",
    "search username": "/admin/core/booking/?q={username}",
    "overdue filter": "/admin/core/booking/?waiting=overdue",
}


def seed_bookings(cursor, *, rows: int, user_ids: list[int], show_ids: list[int], days: float = 365) -> None:
    """Insert `rows` decided bookings spread over the users and shows and evenly over the
    last `days` days (so newest first is a real order), 80% confirmed, 10% failed, 10%
    cancelled."""
    cursor.execute(
        "INSERT INTO core_booking (id, user_id, show_id, status, seats, quantity, failure_reason, "
        "idempotency_key, request_fingerprint, decide_attempts, request_id, created_at, decided_at) "
        "SELECT gen_random_uuid(), (%s::bigint[])[1 + i %% %s], (%s::bigint[])[1 + i %% %s], "
        "CASE i %% 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'cancelled' ELSE 'confirmed' END, '{}', 1, "
        "CASE i %% 10 WHEN 0 THEN 'sold_out' END, NULL, '', 0, '', "
        "now() - make_interval(secs => i * %s), now() - make_interval(secs => i * %s) "
        "FROM generate_series(1, %s) AS i",
        [user_ids, len(user_ids), show_ids, len(show_ids), days * 86400 / rows, days * 86400 / rows, rows],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the database (re-runs then skip seeding)")
    args = parser.parse_args()

    from bench.large_db import bench_superuser, drop_bench_database, open_bench_database

    open_bench_database(keep=args.keep)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tests.factories import ShowFactory, UserFactory

    superuser, new_database = bench_superuser()
    if new_database:
        users = [UserFactory().pk for _ in range(200)]
        shows = [ShowFactory().pk for _ in range(500)]
        started = time.monotonic()
        with connection.cursor() as cursor:
            for done in range(0, args.rows, 1_000_000):
                seed_bookings(cursor, rows=min(1_000_000, args.rows - done), user_ids=users, show_ids=shows)
            cursor.execute("ANALYZE core_booking")
        print(f"seeded {args.rows:,} bookings in {time.monotonic() - started:.0f} s")
    from core.models import Booking, Show

    show_id = Show.objects.order_by("id").values_list("id", flat=True).first()
    booking = Booking.objects.select_related("user").order_by("pk").first()

    client = Client()
    client.force_login(superuser)
    print("\n| page | median of 5 (ms) | statements | slowest statement (ms) |\n|---|---|---|---|")
    for name, url in SCENARIOS.items():
        url = url.format(show_id=show_id, booking_id=booking.pk, username=booking.user.username)
        assert client.get(url).status_code == 200, url
        timings = []
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                started = time.monotonic()
                response = client.get(url)
                timings.append((time.monotonic() - started) * 1000)
            assert response.status_code == 200, url
        slowest = max(float(q["time"]) for q in queries.captured_queries) * 1000
        print(f"| {name} | {statistics.median(timings):.0f} | {len(queries)} | {slowest:.0f} |")
    if not args.keep:
        drop_bench_database()


if __name__ == "__main__":
    main()
