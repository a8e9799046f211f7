"""Fixtures for fault tests: each test gets its own PostgreSQL cluster (a copy of a migrated
one) and its own Redis, so that it may stop, kill and restart them."""

import shutil
import signal
import subprocess
import sys

import pytest

from tests import pgbouncer, rabbitmq
from tests.faults.stack import FaultStack
from tests.harness import procs, service
from tests.harness.servers import PG_BIN, PrivatePostgres, PrivateRedis


def pytest_collection_modifyitems(items):
    # Everything under tests/faults is a fault test, and only those.
    for item in items:
        if "/tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.faults)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def _teardown_on_sigterm():
    """A CI time limit ends a run with SIGTERM: turn it into the KeyboardInterrupt pytest
    handles, so that the fixtures still stop the private servers and processes."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def migrated_cluster():
    """A stopped cluster holding a migrated `booking` database, to be copied per test."""
    if not shutil.which("redis-server") or not (PG_BIN / "initdb").exists():
        pytest.fail(f"fault tests need redis-server and {PG_BIN}/initdb (set FAULTS_PG_BIN)")
    cluster = PrivatePostgres.initdb().start()
    try:
        with cluster.connect("postgres") as conn, conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE booking")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
            cwd=procs.ROOT,
            env=service.service_env(DATABASE_URL=cluster.url()),
            check=True,
            capture_output=True,
        )
    finally:
        cluster.stop()
    yield cluster
    cluster.destroy()


@pytest.fixture
def private_pg(migrated_cluster):
    cluster = migrated_cluster.clone().start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path).start()
    yield server
    server.kill()


@pytest.fixture
def broker_url(private_redis):
    """The test's broker: its private Redis, or on RabbitMQ (TEST_AMQP_URL) a virtual host
    of its own, deleted after the test."""
    if not rabbitmq.base_url():
        yield private_redis.url()
        return
    url = rabbitmq.create(rabbitmq.new_vhost_url("booking-fault"))
    yield url
    rabbitmq.delete(url)


@pytest.fixture
def bouncer(private_pg):
    """With TEST_PGBOUNCER=1, a private PgBouncer in transaction pooling mode in front of the
    test's cluster, through which the service reaches it; otherwise None (directly)."""
    if not pgbouncer.enabled():
        yield None
        return
    if reason := pgbouncer.missing_reason():
        pytest.fail(reason)
    server = pgbouncer.PrivatePgBouncer(host="127.0.0.1", port=private_pg.port, dbname="booking").start()
    yield server
    server.stop()


@pytest.fixture
def stack(private_pg, private_redis, broker_url, bouncer, tmp_path):
    """A FaultStack, not started: the test chooses its workers and settings."""
    created: list[FaultStack] = []

    def make(**env) -> FaultStack:
        env = {"CELERY_BROKER_URL": broker_url, **(bouncer.service_env() if bouncer else {}), **env}
        created.append(FaultStack(pg=private_pg, redis=private_redis, log_dir=tmp_path, bouncer=bouncer, **env))
        return created[-1]

    yield make
    for item in created:
        item.stop()
