"""How the decider tells a PostgreSQL outage (retry the show later, blame no booking) from an
error of its own work (count it against the booking, fail it after a bounded number of
attempts), with real errors from the real PostgreSQL."""

import pytest
from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connection, transaction
from django.db.backends.postgresql.base import DatabaseWrapper

from core.models import BookedSeat, Booking
from core.services.bookings import booking_decide_next, booking_submit, database_unavailable

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
    assert database_unavailable(error)


def test_a_terminated_session_is_an_outage():
    wrapper = _other_connection()
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    error = _error_of(lambda: wrapper.cursor().execute("SELECT 1"))
    wrapper.close()
    assert database_unavailable(error)


def test_a_statement_timeout_is_not_an_outage():
    def slow():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 10")
            cursor.execute("SELECT pg_sleep(1)")

    error = _error_of(slow)
    assert isinstance(error, OperationalError)  # psycopg2 reports it as one
    assert not database_unavailable(error)


@pytest.mark.parametrize("sqlstate", ["57014", "40P01", "40001"])
def test_a_booking_that_times_out_or_deadlocks_every_time_fails_alone(user, show, settings, sqlstate):
    """query_canceled, deadlock_detected and serialization_failure are OperationalErrors to
    psycopg2; raised on every decision of one booking, they must not block its show."""
    settings.BOOKING_MAX_DECIDE_ATTEMPTS = 3
    poison, _ = booking_submit(user_id=user.pk, show_id=show.pk, seats=["A1"])
    after = [booking_submit(user_id=user.pk, show_id=show.pk, quantity=1)[0] for _ in range(3)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION test_poison() RETURNS trigger AS $$
            BEGIN
                IF NEW.id = '{poison.pk}'::uuid AND NEW.status = 'confirmed' THEN
                    RAISE EXCEPTION 'poison booking' USING ERRCODE = '{sqlstate}';
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_poison BEFORE UPDATE ON core_booking
                FOR EACH ROW EXECUTE FUNCTION test_poison();
            """
        )
    rounds = 0
    while booking_decide_next(show_id=show.pk):
        rounds += 1
        assert rounds < 20, "the drain must end"
    poison.refresh_from_db()
    assert (poison.status, poison.failure_reason, poison.decide_attempts) == ("failed", "processing_error", 3)
    assert all(b.status == "confirmed" for b in Booking.objects.filter(pk__in=[b.pk for b in after]))
    assert not BookedSeat.objects.filter(booking=poison).exists()
