"""Make sure PostgreSQL and Redis answer, and that the database exists.

Used by `make run` and `make test` on a fresh machine: a local server that is installed but
stopped is started (pg_ctlcluster, redis-server); one that cannot be reached is reported
with how to start it, and the command fails.
"""

import glob
import shutil
import subprocess
import time
from urllib.parse import urlparse

import psycopg2
import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg2 import sql

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


class Command(BaseCommand):
    help = "Check PostgreSQL and Redis (starting local ones that are stopped) and create the database."

    def handle(self, *args, **options):
        self._postgres()
        for url in {settings.REDIS_URL, settings.CELERY_BROKER_URL}:
            if url.startswith("redis"):
                self._redis(url)

    # --- PostgreSQL ---------------------------------------------------------------------

    def _postgres(self) -> None:
        db = settings.DATABASES["default"]
        params = {
            "host": db.get("HOST") or "127.0.0.1",
            "port": db.get("PORT") or 5432,
            "user": db.get("USER") or None,
            "password": db.get("PASSWORD") or None,
            "connect_timeout": 3,
        }
        conn = self._connect_postgres(params)
        if conn is None and params["host"] in LOCAL_HOSTS and self._start_postgres():
            conn = self._connect_postgres(params, wait=20)
        if conn is None:
            raise CommandError(
                f"PostgreSQL is not reachable at {params['host']}:{params['port']}. Start it, e.g.\n"
                "  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
                "or point DATABASE_URL at a running server."
            )
        name = db["NAME"]
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                self.stdout.write(f"Created database {name}.")
        conn.close()
        self.stdout.write(f"PostgreSQL OK ({params['host']}:{params['port']}/{name}).")

    @staticmethod
    def _connect_postgres(params: dict, wait: float = 0):
        deadline = time.monotonic() + wait
        while True:
            try:
                return psycopg2.connect(dbname="postgres", **params)
            except psycopg2.OperationalError:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.5)

    def _start_postgres(self) -> bool:
        versions = sorted(glob.glob("/etc/postgresql/*"))
        if not versions or not shutil.which("pg_ctlcluster"):
            return False
        version = versions[-1].rsplit("/", 1)[-1]
        self.stdout.write(f"PostgreSQL is down; starting cluster {version}/main ...")
        result = subprocess.run(  # noqa: S603 - fixed command, no user input
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        )
        return result.returncode == 0 or "already running" in result.stderr

    # --- Redis --------------------------------------------------------------------------

    def _redis(self, url: str) -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        parsed = urlparse(url)
        if self._ping(client):
            self.stdout.write(f"Redis OK ({parsed.hostname}:{parsed.port or 6379}).")
            return
        if parsed.hostname in LOCAL_HOSTS and shutil.which("redis-server"):
            self.stdout.write("Redis is down; starting redis-server ...")
            subprocess.run(  # noqa: S603 - fixed command, no user input
                [  # noqa: S607 - found on PATH like the README's command
                    "redis-server",
                    "--daemonize",
                    "yes",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(parsed.port or 6379),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                capture_output=True,
                check=False,
            )
            for _ in range(20):
                if self._ping(client):
                    self.stdout.write("Redis started.")
                    return
                time.sleep(0.25)
        raise CommandError(
            f"Redis is not reachable at {parsed.hostname}:{parsed.port or 6379}. Start it, e.g.\n"
            '  redis-server --daemonize yes --port 6379 --save "" --appendonly no\n'
            "or point REDIS_URL at a running server."
        )

    @staticmethod
    def _ping(client) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
