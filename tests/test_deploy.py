"""Deployment files: the Procfile's release step (migrations with a lock_timeout) and the
ports docker compose publishes."""

import os
import re
import subprocess
import time

import psycopg2
import pytest
import yaml
from django.conf import settings
from psycopg2 import sql

from tests.harness.procs import BIN, ROOT


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


# ---- the release step --------------------------------------------------------------------


@pytest.fixture
def release_db():
    """A database of its own, migrated to just before core's 0003 (which drops an index on
    core_bookedseat: an ACCESS EXCLUSIVE lock on that table)."""
    db = settings.DATABASES["default"]
    name = f"{db['NAME'].removeprefix('test_')}_release"
    params = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"] or "root"}
    admin = psycopg2.connect(dbname="postgres", **params)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{params['user']}@{params['host']}:{params['port']}/{name}",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MIGRATE_LOCK_TIMEOUT": "1s",
    }
    subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "core", "0002", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    holder = psycopg2.connect(dbname=name, **params)
    try:
        yield env, holder
    finally:
        holder.close()
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def _hold_access_share(holder) -> None:
    """A long read in an open transaction, as a report or a slow request would hold it."""
    with holder.cursor() as cur:
        cur.execute("SELECT count(*) FROM core_bookedseat")


def _applied(holder, migration: str) -> bool:
    with holder.cursor() as cur:
        cur.execute("SELECT 1 FROM django_migrations WHERE app = 'core' AND name = %s", [migration])
        found = cur.fetchone() is not None
    holder.rollback()
    return found


def test_the_release_step_gives_up_on_a_locked_table_instead_of_queueing_behind_it(release_db):
    env, holder = release_db
    _hold_access_share(holder)
    started = time.monotonic()
    result = subprocess.run(
        ["sh", "-c", _procfile()["release"]],
        cwd=ROOT,
        env={**env, "MIGRATE_ATTEMPTS": "2"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert result.returncode != 0, result.stdout + result.stderr
    assert "lock_timeout=1s" in result.stderr
    assert "attempt 1 of 2" in result.stderr
    assert elapsed < 60  # two 1 s lock waits and a 2 s pause, plus Django's start
    holder.rollback()
    assert not _applied(holder, "0003_leaner_booking_indexes")  # rolled back whole

    # The long transaction ended: the same step goes through.
    result = subprocess.run(
        ["sh", "-c", _procfile()["release"]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert _applied(holder, "0003_leaner_booking_indexes")


def test_the_release_step_retries_until_the_lock_is_free(release_db):
    env, holder = release_db
    _hold_access_share(holder)
    proc = subprocess.Popen(
        [str(BIN / "python"), "manage.py", "release_migrate"],
        cwd=ROOT,
        env={**env, "MIGRATE_ATTEMPTS": "5"},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stderr.readline()  # blocks until the first attempt has timed out
        assert re.search(r"attempt 1 of 5\); rolled back, retrying", line), line
        holder.rollback()  # the long transaction ends during the pause
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    finally:
        proc.kill()
    assert _applied(holder, "0003_leaner_booking_indexes")


# ---- docker compose ------------------------------------------------------------------------


def _published(port: str) -> str:
    """The host address of a `ports:` entry, with ${VAR:-default} read as its default."""
    expanded = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", port)
    parts = expanded.split(":")
    # HOST:HOST_PORT:CONTAINER_PORT; without a host, Docker publishes on every interface.
    return parts[0] if len(parts) == 3 else "every interface"


def test_compose_publishes_every_port_on_loopback_unless_told_otherwise():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    ports = {name: service.get("ports", []) for name, service in services.items()}
    assert ports["flower"]
    assert ports["web"]
    published = {name: [_published(str(port)) for port in entries] for name, entries in ports.items() if entries}
    assert all(host == "127.0.0.1" for hosts in published.values() for host in hosts), published
    assert "${FLOWER_BIND:-127.0.0.1}:5555:5555" in ports["flower"]


# ---- PROMETHEUS_MULTIPROC_DIR ------------------------------------------------------------

COUNT_ONE_REQUEST = """
import prometheus_client  # first, as in a Celery process (Flower's plugin imports it)
import django
django.setup()
from django.conf import settings
from core import metrics
metrics.HTTP_REQUESTS.labels(method="GET", route="/x", status="200").inc()
print(repr(settings.PROMETHEUS_MULTIPROC_DIR))
print(prometheus_client.generate_latest().decode())
"""


def test_an_empty_metrics_directory_means_per_process_counters(tmp_path):
    """README: `PROMETHEUS_MULTIPROC_DIR` empty means each process counts on its own, in
    memory; prometheus_client alone would take the empty value as a directory, the working
    directory, and write its files there."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "PROMETHEUS_MULTIPROC_DIR": "",
    }
    result = subprocess.run(
        [str(BIN / "python"), "-c", COUNT_ONE_REQUEST],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "''"
    assert 'http_requests_total{method="GET",route="/x",status="200"} 1.0' in result.stdout
    assert list(tmp_path.iterdir()) == []
