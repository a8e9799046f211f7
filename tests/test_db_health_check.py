"""The persistent connection's health check (booking_api/postgres/base.py): a connection the
server ended is replaced before a request uses it; a healthy idle one is taken without a
round trip."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection

from tests.factories import UserFactory
from tests.locking import execute, holder


def _last_query(observer, pid: int) -> str:
    return execute(observer, "SELECT query FROM pg_stat_activity WHERE pid = %s", pid)[0][0]


@pytest.mark.django_db(transaction=True)
def test_a_healthy_idle_connection_is_checked_without_a_round_trip():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), 'health-check-marker'")
        pid = cursor.fetchone()[0]
    with holder() as observer:
        observer.autocommit = True
        assert connection.is_usable()
        # Django's own check would have run SELECT 1 on the server.
        assert "health-check-marker" in _last_query(observer, pid)


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it():
    User = get_user_model()
    user = UserFactory()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with holder() as admin:
        admin.autocommit = True
        execute(admin, "SELECT pg_terminate_backend(%s)", pid)
        deadline = time.monotonic() + 10
        while execute(admin, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", pid)[0][0]:
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.02)
    assert not connection.is_usable()

    # What Django does when a request starts (the test client skips it), then the request's
    # first query: the dead connection is found and replaced, no error.
    close_old_connections()
    assert User.objects.get(pk=user.pk) == user
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
