"""The database of the manual large-table measurements (bench.admin_list, bench.dashboard):
BENCH_DB_NAME on the server of DATABASE_URL, made anew and migrated, Django set up on it."""

import os
import sys


def open_bench_database(*, keep: bool) -> None:
    """Drop and create BENCH_DB_NAME (kept as it is with `keep`), point Django at it, set
    Django up and migrate. Exits when the name does not start with booking_bench: the
    measurement drops it."""
    import psycopg2
    from psycopg2 import sql

    db_name = os.environ.get("BENCH_DB_NAME", "booking_bench")
    if not db_name.startswith("booking_bench"):
        sys.exit("BENCH_DB_NAME must start with booking_bench (the benchmark drops it).")
    base = os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/booking").rsplit("/", 1)[0]
    admin = psycopg2.connect(f"{base}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name])
        exists = cur.fetchone() is not None
        if exists and not keep:
            cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db_name)))
        if not exists or not keep:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    admin.close()
    os.environ["DATABASE_URL"] = f"{base}/{db_name}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0)


def bench_superuser():
    """(the measurements' superuser, whether it was just made: the database needs seeding)."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    superuser = user_model.objects.filter(username="bench-admin").first()
    if superuser is not None:
        return superuser, False
    return user_model.objects.create_superuser("bench-admin", "bench-admin@example.com", "bench-pass-123"), True


def drop_bench_database() -> None:
    """Drop BENCH_DB_NAME (after open_bench_database; Django's connection is closed first)."""
    import psycopg2
    from django.db import connection
    from psycopg2 import sql

    connection.close()
    base, db_name = os.environ["DATABASE_URL"].rsplit("/", 1)
    admin = psycopg2.connect(f"{base}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db_name)))
    admin.close()
