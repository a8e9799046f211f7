"""How the decider tells a PostgreSQL outage (retry the show later, blame no booking) from an
error of its own work (count it against the booking, fail it after a bounded number of
attempts), with real errors from the real PostgreSQL."""

import time

import pytest
from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connection, transaction
from django.db.backends.postgresql.base import DatabaseWrapper

from core.db_errors import is_contention, is_unavailable
from core.models import BookedSeat, Booking
from core.services.decisions import booking_decide_next
from core.services.submission import booking_submit
from tests.locking import poison_booking

pytestmark = pytest.mark.django_db


def _error_of(action) -> BaseException:
    with pytest.raises(DatabaseError) as caught:
        action()
    return caught.value


def _other_connection(**overrides) -> DatabaseWrapper:
    # A second connection to the same server, outside Django's registry.
    return DatabaseWrapper({**connection.settings_dict, **overrides}, alias=DEFAULT_DB_ALIAS)


def test_a_refused_connection_is_an_outage():
    wrapper = _other_connection(PORT=1)
    error = _error_of(wrapper.ensure_connection)
    assert isinstance(error, OperationalError)
    assert is_unavailable(error)


def test_a_terminated_session_is_an_outage():
    wrapper = _other_connection()
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    error = _error_of(lambda: wrapper.cursor().execute("SELECT 1"))
    wrapper.close()
    assert is_unavailable(error)


def test_a_session_ended_by_the_idle_in_transaction_timeout_is_an_outage():
    """What a frozen holder meets when it resumes: the server ended its session. The drain
    is retried (with a new connection) and no booking is blamed."""
    wrapper = _other_connection()
    wrapper.ensure_connection()
    wrapper.connection.autocommit = False
    with wrapper.connection.cursor() as cursor:
        cursor.execute("SET idle_in_transaction_session_timeout = 50")
        cursor.execute("SELECT 1")
    time.sleep(0.5)
    error = _error_of(lambda: wrapper.cursor().execute("SELECT 1"))
    wrapper.close()
    assert is_unavailable(error)
    assert not is_contention(error)


def test_a_statement_timeout_is_not_an_outage():
    def slow():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 10")
            cursor.execute("SELECT pg_sleep(1)")

    error = _error_of(slow)
    assert isinstance(error, OperationalError)  # psycopg2 reports it as one
    assert not is_unavailable(error)


def _poison(*, user, show, sqlstate: str):
    """A booking whose confirmation raises `sqlstate` every time (a trigger), then three more."""
    poison, _ = booking_submit(user_id=user.pk, show_id=show.pk, seats=["A1"])
    after = [booking_submit(user_id=user.pk, show_id=show.pk, quantity=1)[0] for _ in range(3)]
    poison_booking(poison.pk, sqlstate=sqlstate)
    return poison, after


@pytest.mark.parametrize("sqlstate", ["54000", "53200"])
def test_an_operational_error_of_the_work_itself_fails_the_booking_alone(user, show, settings, sqlstate):
    """program_limit_exceeded, out_of_memory: OperationalErrors to psycopg2 that are neither an
    outage nor contention; raised on every decision of one booking, they must not block its
    show."""
    settings.BOOKING_MAX_DECIDE_ATTEMPTS = 3
    poison, after = _poison(user=user, show=show, sqlstate=sqlstate)
    rounds = 0
    while booking_decide_next(show_id=show.pk):
        rounds += 1
        assert rounds < 20, "the drain must end"
    poison.refresh_from_db()
    assert (poison.status, poison.failure_reason, poison.decide_attempts) == ("failed", "processing_error", 3)
    assert all(b.status == "confirmed" for b in Booking.objects.filter(pk__in=[b.pk for b in after]))
    assert not BookedSeat.objects.filter(booking=poison).exists()


@pytest.mark.parametrize("sqlstate", ["55P03", "57014", "40P01", "40001"])
def test_contention_is_retried_and_never_counted_against_a_booking(user, show, settings, sqlstate):
    """lock_not_available (lock_timeout), query_canceled (statement_timeout), deadlock_detected
    and serialization_failure say other work was in the way: the drain is retried later
    (the error is re-raised) and no attempt is counted against the booking."""
    settings.BOOKING_MAX_DECIDE_ATTEMPTS = 1
    poison, after = _poison(user=user, show=show, sqlstate=sqlstate)
    for _ in range(3):
        error = _error_of(lambda: booking_decide_next(show_id=show.pk))
        assert isinstance(error, OperationalError)
        assert is_contention(error)
        assert not is_unavailable(error)
    poison.refresh_from_db()
    assert (poison.status, poison.decide_attempts) == ("pending", 0)
    assert Booking.objects.filter(pk__in=[b.pk for b in after], status="pending").count() == 3
