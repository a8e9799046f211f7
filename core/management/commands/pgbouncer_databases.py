"""The [databases] section of a PgBouncer in transaction pooling mode in front of DATABASE_URL.

Two aliases of the same database, one per role, each with the role's session timeouts
(DB_SESSION_TIMEOUTS) set by PgBouncer on every server connection it opens (connect_query):
in transaction pooling a client's session is not its own, so the service cannot set them
itself (README "Scaling"). Web processes connect to the first alias, workers to the second
(DB_WORKER_NAME). TimeZone is fixed to UTC so that Django never has to SET it.
"""

from django.conf import settings
from django.core.management.base import BaseCommand


def database_lines(*, host: str, port: int, dbname: str, user: str = "", web_alias: str, worker_alias: str) -> list:
    lines = []
    for alias, role in ((web_alias, "web"), (worker_alias, "worker")):
        sets = "; ".join(f"SET {name} = {value}" for name, value in settings.DB_SESSION_TIMEOUTS[role].items())
        target = f"host={host} port={port} dbname={dbname}" + (f" user={user}" if user else "")
        lines.append(f"{alias} = {target} timezone=UTC connect_query='{sets}'")
    return lines


class Command(BaseCommand):
    help = "Print PgBouncer's [databases] section: a web and a worker alias with their timeouts."

    def add_arguments(self, parser):
        db = settings.DATABASES["default"]
        parser.add_argument("--host", default=db["HOST"] or "127.0.0.1", help="PostgreSQL as PgBouncer reaches it")
        parser.add_argument("--port", type=int, default=int(db["PORT"] or 5432))
        parser.add_argument("--dbname", default=db["NAME"])
        parser.add_argument("--user", default="")
        parser.add_argument("--web-alias", default=db["NAME"])
        parser.add_argument("--worker-alias", default=f"{db['NAME']}_worker")

        parser.add_argument("--ini", action="store_true", help="a whole pgbouncer.ini: also its [pgbouncer] section")
        parser.add_argument("--listen-addr", default="127.0.0.1")
        parser.add_argument("--listen-port", type=int, default=6432)
        parser.add_argument("--auth-file", default="/etc/pgbouncer/userlist.txt")
        parser.add_argument("--pool-size", type=int, default=20, help="server connections per alias")

    def handle(self, *args, **options):
        self.stdout.write("[databases]")
        for line in database_lines(
            host=options["host"],
            port=options["port"],
            dbname=options["dbname"],
            user=options["user"],
            web_alias=options["web_alias"],
            worker_alias=options["worker_alias"],
        ):
            self.stdout.write(line)
        if options["ini"]:
            for line in pgbouncer_section(
                listen_addr=options["listen_addr"],
                listen_port=options["listen_port"],
                auth_file=options["auth_file"],
                pool_size=options["pool_size"],
            ):
                self.stdout.write(line)


def pgbouncer_section(*, listen_addr: str, listen_port: int, auth_file: str, pool_size: int) -> list:
    """The settings transaction pooling needs (README "Scaling")."""
    return [
        "[pgbouncer]",
        f"listen_addr = {listen_addr}",
        f"listen_port = {listen_port}",
        "pool_mode = transaction",
        "auth_type = scram-sha-256",
        f"auth_file = {auth_file}",
        f"default_pool_size = {pool_size}",
        "max_client_conn = 2000",
        # psycopg2 sends it at connect; anything else in the startup packet (libpq
        # `options`) is refused, which is why the timeouts are in connect_query.
        "ignore_startup_parameters = extra_float_digits",
        # A server connection goes back to the pool after each transaction: no reset query
        # is needed, and none may be relied on.
        "server_reset_query =",
    ]
