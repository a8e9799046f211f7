"""Admission control (booking_api/admission.py): past WEB_ADMISSION_LIMIT requests admitted
per process, the excess is answered at once with 503 `overloaded` and Retry-After, before
any Django work; the health probes are answered whatever the load."""

import threading
import time

import httpx
import pytest

from booking_api import admission
from tests import openapi_check
from tests.conftest import bearer
from tests.factories import ShowFactory, UserFactory
from tests.harness.service import start_web
from tests.locking import execute, holder, pending_booking


@pytest.fixture(scope="module")
def one_thread_web(django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn with one process of one thread that admits one request at a time, and whose
    database waits outlast the test (the held show row is what keeps its thread busy)."""
    web, base_url = start_web(
        tmp_path_factory.mktemp("admission"),
        workers=1,
        WEB_THREADS=1,
        WEB_ADMISSION_LIMIT=1,
        DB_LOCK_TIMEOUT_MS=60000,
    )
    yield base_url
    web.stop()


def _client(base_url: str, user=None) -> httpx.Client:
    headers = {"Authorization": bearer(user)} if user is not None else {}
    hooks = {"response": [openapi_check.check_httpx]} if not openapi_check.node_missing_reason() else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=20, event_hooks=hooks)


def _lock_waits(conn) -> int:
    (count,) = execute(
        conn,
        "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )[0]
    return count


@pytest.mark.django_db(transaction=True)
def test_the_excess_is_answered_at_once_while_the_admitted_request_waits(one_thread_web):
    user = UserFactory()
    show = ShowFactory()
    booking = pending_booking(user, show)
    cancel: dict = {}

    with holder() as conn, holder() as observer:
        observer.autocommit = True
        # The cancel locks the show row first (the one lock order): held here, it waits.
        execute(conn, "SELECT id FROM core_show WHERE id = %s FOR UPDATE", show.pk)

        def cancel_booking():
            with _client(one_thread_web, user) as client:
                cancel["response"] = client.delete(f"/api/v1/bookings/{booking.pk}")

        thread = threading.Thread(target=cancel_booking, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while _lock_waits(observer) == 0:
            assert time.monotonic() < deadline, "the cancel never waited on the show row"
            time.sleep(0.02)

        # The one admitted request holds the only thread: the next ones are shed, at once.
        with _client(one_thread_web, user) as client:
            started = time.monotonic()
            shed = client.get("/api/v1/auth/me", headers={"X-Request-ID": "overload-check-1"})
            shed_post = client.post("/api/v1/bookings", json={"show": show.pk, "quantity": 1})
            shed_seconds = time.monotonic() - started
            health = client.get("/healthz")
        assert shed.status_code == 503, shed.text
        assert shed.json() == {
            "code": "overloaded",
            "message": "The service is receiving more requests than it can serve; retry after Retry-After seconds.",
            "details": {},
        }
        assert shed.headers["Retry-After"] == "1"
        assert shed.headers["X-Request-ID"] == "overload-check-1"
        assert shed_post.status_code == 503
        assert shed_post.json()["code"] == "overloaded"
        assert shed_post.headers["X-Request-ID"]
        assert shed_seconds < 5, shed_seconds
        # Liveness is not shed: an orchestrator must not restart a process for being busy.
        assert health.status_code == 200
        assert "response" not in cancel, "the admitted request was not kept waiting"
        conn.rollback()

    thread.join(30)
    assert cancel["response"].status_code == 200, cancel["response"].text
    # Nothing shed was done: the refused POST created no booking.
    assert list(show.bookings.values_list("id", flat=True)) == [booking.pk]
    with _client(one_thread_web, user) as client:
        assert client.get("/api/v1/auth/me").status_code == 200


def test_a_request_that_waited_too_long_for_a_thread_is_shed(monkeypatch):
    monkeypatch.setattr(admission, "ADMISSION_MAX_WAIT", 0.5)
    environ = {"PATH_INFO": "/api/v1/auth/me"}
    monkeypatch.setattr(admission._current, "state", (True, time.monotonic() - 1.0), raising=False)
    assert admission.shed_reason(environ) == "wait"
    monkeypatch.setattr(admission._current, "state", (True, time.monotonic()), raising=False)
    assert admission.shed_reason(environ) is None
    monkeypatch.setattr(admission._current, "state", (True, time.monotonic() - 1.0), raising=False)
    assert admission.shed_reason({"PATH_INFO": "/readyz"}) is None
