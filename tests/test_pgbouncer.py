"""The service behind PgBouncer in transaction pooling mode (README "Scaling").

A private PgBouncer (pool_mode=transaction, the [databases] section of `manage.py
pgbouncer_databases`) in front of the test database; the service's settings in subprocesses,
as gunicorn and Celery would have them. The booking e2e and worker fault tests run whole
through such a PgBouncer with TEST_PGBOUNCER=1 (`make test-pgbouncer`).
"""

import json
import subprocess
import sys

import pytest
from django.conf import settings

from tests import pgbouncer
from tests.harness import procs, service

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(bool(pgbouncer.missing_reason()), reason=pgbouncer.missing_reason() or ""),
]

PROBE = """
import json
from django.db import connection
role = {role!r}
if role == "worker":
    from booking_api.config.celery import use_worker_database_timeouts
    use_worker_database_timeouts()
from django.contrib.auth.models import User
with connection.cursor() as cursor:
    values = {{}}
    for name in ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout", "TimeZone"):
        cursor.execute("SHOW " + name)
        values[name] = cursor.fetchone()[0]
# A chunked read: a server-side cursor would not survive transaction pooling.
values["users"] = sum(1 for _ in User.objects.iterator(chunk_size=1))
print(json.dumps(values))
"""


@pytest.fixture
def bouncer():
    server = pgbouncer.PrivatePgBouncer.for_test_database()
    yield server.start()
    server.stop()


def _probe(role: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE.format(role=role)],
        cwd=procs.ROOT,
        env=service.service_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _ms(value: str) -> int:
    units = {"ms": 1, "s": 1000, "min": 60000}
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz")
    return int(number) * units[value[len(number) :] or "ms"]


@pytest.mark.parametrize("role", ["web", "worker"])
def test_behind_pgbouncer_each_role_gets_its_timeouts(bouncer, role, django_user_model):
    django_user_model.objects.create(username="a")
    django_user_model.objects.create(username="b")
    probe = _probe(role, bouncer.service_env())
    assert probe.returncode == 0, probe.stderr[-2000:]
    values = json.loads(probe.stdout.strip().splitlines()[-1])
    expected = settings.DB_SESSION_TIMEOUTS[role]
    assert {name: _ms(values[name]) for name in expected} == expected
    assert values["TimeZone"] == "UTC"
    assert values["users"] == 2


def test_session_options_do_not_pass_pgbouncer(bouncer):
    # Without DB_POOL_MODE=transaction the timeouts travel as libpq `options`, which
    # PgBouncer refuses: the reason for the aliases' connect_query.
    probe = _probe("web", {"DATABASE_URL": bouncer.url()})
    assert probe.returncode != 0
    assert "unsupported startup parameter: options" in probe.stderr
