"""Bounded waits on PostgreSQL: every session carries its role's lock, statement and
idle-in-transaction timeouts, and a request that loses a wait is answered with a retryable
503 `busy`, quickly, never a hang and never "database unavailable"."""

import json

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from rest_framework.test import APIClient

from booking_api.exceptions import api_exception_handler
from core import db_errors
from core.services.decisions import booking_decide_batch, booking_decide_next
from tests.conftest import bearer
from tests.factories import ShowFactory, UserFactory
from tests.locking import Background, execute, holder, pending_booking

TIMEOUTS = ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")


def _session_timeouts() -> dict[str, int]:
    with connection.cursor() as cursor:
        values = {}
        for name in TIMEOUTS:
            cursor.execute("SELECT setting::int FROM pg_settings WHERE name = %s", [name])
            values[name] = cursor.fetchone()[0]
    return values


@pytest.mark.django_db
def test_web_sessions_carry_the_web_timeouts():
    assert _session_timeouts() == settings.DB_SESSION_TIMEOUTS["web"]
    assert all(value > 0 for value in settings.DB_SESSION_TIMEOUTS["web"].values())


@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_switches_its_sessions_to_the_worker_timeouts():
    from booking_api.config.celery import use_worker_database_timeouts

    web = settings.DATABASES["default"]["OPTIONS"]["options"]
    try:
        use_worker_database_timeouts(sender=None)  # the worker_init receiver, as Celery calls it
        assert _session_timeouts() == settings.DB_SESSION_TIMEOUTS["worker"]
    finally:
        settings.DATABASES["default"]["OPTIONS"]["options"] = web
        connections.close_all()
    assert _session_timeouts() == settings.DB_SESSION_TIMEOUTS["web"]


def _error_of(action) -> DatabaseError:
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        action()
    return caught.value


@pytest.mark.django_db
def test_a_statement_timeout_is_a_retryable_busy_answer():
    def slow():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 10")
            cursor.execute("SELECT pg_sleep(1)")

    error = _error_of(slow)
    assert db_errors.classify(error) is db_errors.DbFailure.STATEMENT_TIMEOUT
    response = api_exception_handler(error, {})
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    body = json.loads(response.content)
    assert (body["code"], body["details"]) == ("busy", {"reason": "statement_timeout"})


@pytest.mark.django_db
def test_a_deadlock_is_a_retryable_busy_answer():
    def deadlock():
        with connection.cursor() as cursor:
            cursor.execute("DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$")

    response = api_exception_handler(_error_of(deadlock), {})
    body = json.loads(response.content)
    assert (response.status_code, body["code"], body["details"]) == (503, "busy", {"reason": "deadlock"})


def _frozen_decider(conn, show_id: int) -> None:
    """What a decider frozen inside its transaction holds: the show row, its pending rows."""
    execute(conn, "SELECT 1 FROM core_show WHERE id = %s FOR NO KEY UPDATE", show_id)
    execute(conn, "SELECT 1 FROM core_booking WHERE show_id = %s AND status = 'pending' FOR UPDATE", show_id)


def _request(method: str, path: str, user, **kwargs):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return getattr(client, method)(path, **kwargs)


@pytest.mark.django_db(transaction=True)
def test_a_cancel_waiting_on_a_frozen_decider_is_answered_busy_within_the_lock_timeout():
    user, show = UserFactory(), ShowFactory()
    booking = pending_booking(user, show)
    with holder() as frozen:
        _frozen_decider(frozen, show.pk)
        # The session's own (web) timeouts, not the test helper's.
        request = Background(lambda: _request("delete", f"/api/v1/bookings/{booking.pk}", user), lock_timeout=None)
        try:
            response = request.join(timeout=20)
        finally:
            frozen.rollback()
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "1"
    assert response.json() == {
        "code": "busy",
        "message": "What this request needs is held by other work right now; retry shortly.",
        "details": {"reason": "lock_timeout"},
    }
    lock_timeout = settings.DB_SESSION_TIMEOUTS["web"]["lock_timeout"] / 1000
    assert lock_timeout * 0.9 <= request.seconds < lock_timeout + 5
    # Once the holder is gone the same request goes through.
    assert _request("delete", f"/api/v1/bookings/{booking.pk}", user).status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", [{"price": "15.00"}, {"status": "cancelled"}])
def test_a_staff_show_change_waiting_on_a_frozen_decider_is_answered_busy(change):
    staff, user, show = UserFactory(is_staff=True), UserFactory(), ShowFactory()
    pending_booking(user, show)
    with holder() as frozen:
        _frozen_decider(frozen, show.pk)
        request = Background(
            lambda: _request("patch", f"/api/v1/shows/{show.pk}", staff, data=change, format="json"),
            lock_timeout=None,
        )
        try:
            response = request.join(timeout=20)
        finally:
            frozen.rollback()
    assert (response.status_code, response.json()["code"]) == (503, "busy")
    assert _request("patch", f"/api/v1/shows/{show.pk}", staff, data=change, format="json").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_decision_waiting_on_a_held_booking_gives_up_without_blaming_it():
    """The decider's wait is bounded too (here by the web session's lock_timeout), and the
    lock timeout is contention: re-raised for a retry, never a failed attempt."""
    user, show = UserFactory(), ShowFactory()
    booking = pending_booking(user, show)
    with holder() as other:
        execute(other, "SELECT 1 FROM core_booking WHERE id = %s FOR UPDATE", str(booking.pk))
        decide = Background(lambda: booking_decide_next(show_id=show.pk), lock_timeout="300ms")
        with pytest.raises(DatabaseError) as caught:
            decide.join(timeout=20)
    assert db_errors.classify(caught.value) is db_errors.DbFailure.LOCK_TIMEOUT
    booking.refresh_from_db()
    assert (booking.status, booking.decide_attempts) == ("pending", 0)
    assert [b.pk for b in booking_decide_batch(show_id=show.pk)] == [booking.pk]
