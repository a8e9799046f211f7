"""A private PgBouncer in transaction pooling mode, for tests that run the service behind one.

With TEST_PGBOUNCER=1 (as `make test-pgbouncer` sets it), the processes the tests start
(gunicorn, Celery workers, beat) reach PostgreSQL through such a PgBouncer, configured as
README "Scaling" describes: pool_mode=transaction, and the [databases] section that
`manage.py pgbouncer_databases` prints (a web and a worker alias with their timeouts).
"""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg2

from tests.harness.procs import free_port, wait_until

ENABLE_ENV = "TEST_PGBOUNCER"
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
RUN_AS = "postgres"  # PgBouncer refuses to run as root


def enabled() -> bool:
    return os.environ.get(ENABLE_ENV, "") not in ("", "0")


def missing_reason() -> str | None:
    if not Path(PGBOUNCER).exists():
        return "pgbouncer is not installed (make test-pgbouncer installs Debian's package)"
    return None


class PrivatePgBouncer:
    """pgbouncer on a free port in front of one PostgreSQL database, as `alias` (web) and
    `alias`_worker (workers); trust authentication for the user `user`."""

    def __init__(self, *, host: str, port: int, dbname: str, user: str = "root"):
        self.target = {"host": host, "port": port, "dbname": dbname}
        self.user = user
        self.alias = dbname
        self.worker_alias = f"{dbname}_worker"
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="booking-pgbouncer-"))
        self.popen: subprocess.Popen | None = None

    @classmethod
    def for_test_database(cls) -> "PrivatePgBouncer":
        """In front of pytest-django's test database (the local PostgreSQL)."""
        from django.db import connection

        db = connection.settings_dict
        return cls(host=db["HOST"] or "127.0.0.1", port=int(db["PORT"] or 5432), dbname=db["NAME"])

    def start(self) -> "PrivatePgBouncer":
        from core.management.commands.pgbouncer_databases import database_lines, pgbouncer_section

        databases = database_lines(**self.target, web_alias=self.alias, worker_alias=self.worker_alias)
        section = pgbouncer_section(
            listen_addr="127.0.0.1", listen_port=self.port, auth_file=str(self.root / "userlist.txt"), pool_size=20
        )
        # The local PostgreSQL trusts loopback: so does this PgBouncer (the user must be listed).
        section = [line if not line.startswith("auth_type") else "auth_type = trust" for line in section]
        (self.root / "userlist.txt").write_text(f'"{self.user}" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "\n".join(
                [
                    "[databases]",
                    *databases,
                    *section,
                    "unix_socket_dir =",
                    f"admin_users = {self.user}",
                    f"logfile = {self.root / 'pgbouncer.log'}",
                    "",
                ]
            )
        )
        args = [PGBOUNCER, str(self.root / "pgbouncer.ini")]
        if os.geteuid() == 0:
            for path in [self.root, *self.root.iterdir()]:
                shutil.chown(path, RUN_AS, RUN_AS)
            args = ["runuser", "-u", RUN_AS, "--", *args]
        self.popen = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._answers, timeout=20, what=f"pgbouncer on {self.port}")
        return self

    def url(self, *, worker: bool = False) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.worker_alias if worker else self.alias}"

    def service_env(self) -> dict:
        """What the service's processes need to run behind this PgBouncer."""
        return {"DATABASE_URL": self.url(), "DB_POOL_MODE": "transaction", "DB_WORKER_NAME": self.worker_alias}

    def clients_in_transaction(self) -> set[int]:
        """Client ports of the connections linked to a server connection: in transaction
        pooling, those inside a transaction (SHOW CLIENTS of the admin console)."""
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="pgbouncer", connect_timeout=3)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute("SHOW CLIENTS")
                names = [column.name for column in cursor.description]
                clients = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            conn.close()
        return {c["port"] for c in clients if c["state"] == "active" and c["database"] != "pgbouncer"}

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)

    def _answers(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            raise RuntimeError(f"pgbouncer exited:\n{self.log()[-2000:]}")
        try:
            psycopg2.connect(self.url(), connect_timeout=3).close()
            return True
        except psycopg2.OperationalError:
            return False
