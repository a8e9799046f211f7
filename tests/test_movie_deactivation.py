"""A deactivated movie stops selling: its shows that have not started are cancelled through
the show service (pending bookings fail, confirmed ones are cancelled, seats freed), so they
leave every listing and new bookings for them are refused, by the API, the admin and under
concurrent writes alike."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from core.exceptions import ValidationFailed
from core.models import BookedSeat, Booking, Movie, Show
from core.services.catalogue import movie_update, show_create, show_update
from core.services.decisions import booking_decide_batch
from core.services.submission import booking_submit
from tests.factories import MovieFactory, ScreenFactory, ShowFactory, UserFactory


@pytest.fixture
def sold_movie(db):
    """A movie with a future show (a confirmed and a pending booking), a second future
    show without bookings, and a show that has already started (a confirmed booking)."""
    movie = MovieFactory()
    booked, empty = ShowFactory(movie=movie), ShowFactory(movie=movie, starts_at=timezone.now() + timedelta(days=2))
    started = ShowFactory(movie=movie, starts_at=timezone.now() + timedelta(minutes=1))
    alice, bob = UserFactory(), UserFactory()
    confirmed = booking_submit(user_id=alice.pk, show_id=booked.pk, seats=["A1", "A2"])[0]
    watched = booking_submit(user_id=alice.pk, show_id=started.pk, seats=["A1"])[0]
    booking_decide_batch(show_id=booked.pk)
    booking_decide_batch(show_id=started.pk)
    pending = booking_submit(user_id=bob.pk, show_id=booked.pk, quantity=1)[0]
    Show.objects.filter(pk=started.pk).update(starts_at=timezone.now() - timedelta(minutes=5))
    movie.booked, movie.empty, movie.started = booked, empty, started
    movie.confirmed, movie.pending, movie.watched, movie.bob = confirmed, pending, watched, bob
    return movie


def _status(obj) -> str:
    obj.refresh_from_db()
    return obj.status


def _assert_stopped_selling(movie, api) -> None:
    assert Movie.objects.get(pk=movie.pk).is_active is False
    assert _status(movie.booked) == _status(movie.empty) == Show.Status.CANCELLED
    movie.pending.refresh_from_db()
    assert (movie.pending.status, movie.pending.failure_reason) == ("failed", "show_cancelled")
    assert _status(movie.confirmed) == Booking.Status.CANCELLED
    assert not BookedSeat.objects.filter(show=movie.booked).exists()
    # A show already under way keeps its audience.
    assert _status(movie.started) == Show.Status.SCHEDULED
    assert _status(movie.watched) == Booking.Status.CONFIRMED

    assert api.get("/api/v1/shows", {"movie": movie.pk}).json()["count"] == 0
    assert api.get(f"/api/v1/movies/{movie.pk}/shows").status_code == 404
    with pytest.raises(ValidationFailed) as error:
        booking_submit(user_id=movie.bob.pk, show_id=movie.empty.pk, quantity=1)
    assert error.value.details == {"show": ["This show was cancelled."]}


@pytest.mark.django_db
def test_deleting_a_movie_with_bookings_cancels_its_future_shows(api, staff_api, sold_movie):
    assert staff_api.delete(f"/api/v1/movies/{sold_movie.pk}").status_code == 204
    _assert_stopped_selling(sold_movie, api)


@pytest.mark.django_db
def test_patching_is_active_off_cancels_them_too_and_back_on_revives_nothing(api, staff_api, sold_movie):
    response = staff_api.patch(f"/api/v1/movies/{sold_movie.pk}", {"is_active": False}, format="json")
    assert response.status_code == 200
    _assert_stopped_selling(sold_movie, api)

    # Reactivating sells again only through new shows: cancelled ones stay cancelled.
    assert staff_api.patch(f"/api/v1/movies/{sold_movie.pk}", {"is_active": True}, format="json").status_code == 200
    assert _status(sold_movie.empty) == Show.Status.CANCELLED
    assert api.get("/api/v1/shows", {"movie": sold_movie.pk}).json()["count"] == 0


@pytest.mark.django_db
def test_unticking_active_in_the_admin_cancels_them_too(api, admin_client, sold_movie):
    page = admin_client.get(f"/admin/core/movie/{sold_movie.pk}/change/")
    form = {
        name: value
        for name, value in page.context["adminform"].form.initial.items()
        if name in page.context["adminform"].form.fields and value is not None
    }
    form.pop("is_active")
    response = admin_client.post(f"/admin/core/movie/{sold_movie.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    _assert_stopped_selling(sold_movie, api)


@pytest.mark.django_db
def test_no_show_is_scheduled_for_an_inactive_movie(show):
    inactive = MovieFactory(is_active=False)
    with pytest.raises(ValidationFailed):
        show_create(movie=inactive, screen=show.screen, starts_at=show.starts_at, price=Decimal("5"))
    with pytest.raises(ValidationFailed) as error:
        show_update(show=show, movie=inactive)
    assert error.value.details == {"movie": ["This movie is not active."]}
    assert Show.objects.get(pk=show.pk).movie_id != inactive.pk


# ---- races: two connections, one holding the deactivation open ------------------------


def _waiters() -> int:
    with connection.cursor() as cursor:
        # Inside a transaction pg_stat_activity is a snapshot taken once: take a fresh one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _in_thread(work) -> tuple[threading.Thread, dict]:
    """Run `work` on its own database connection; its result or error lands in the dict."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = work()
        except Exception as exc:  # noqa: BLE001 (handed to the test, which checks its type)
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _wait_blocked_or_done(thread: threading.Thread, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end and thread.is_alive() and not _waiters():
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_a_show_created_while_the_movie_is_being_deactivated_is_refused():
    movie, screen = MovieFactory(), ScreenFactory()
    starts_at = timezone.now() + timedelta(days=3)
    with transaction.atomic():
        movie_update(movie=movie, is_active=False)
        # The other connection read the movie before this deactivation commits.
        stale = Movie.objects.get(pk=movie.pk)
        stale.is_active = True
        thread, outcome = _in_thread(
            lambda: show_create(movie=stale, screen=screen, starts_at=starts_at, price=Decimal("9"))
        )
        _wait_blocked_or_done(thread)
    thread.join(30)
    assert isinstance(outcome.get("error"), ValidationFailed), outcome
    assert not Show.objects.filter(movie=movie, status=Show.Status.SCHEDULED).exists()


@pytest.mark.django_db(transaction=True)
def test_a_booking_accepted_while_the_movie_is_being_deactivated_never_gets_seats():
    """The submission's conditional insert does not wait for the deactivation (that would
    make every submission wait for decisions too): it may still be accepted, but the
    decider, which locks the show after the deactivation commits, fails it."""
    show, user = ShowFactory(), UserFactory()
    with transaction.atomic():
        movie_update(movie=show.movie, is_active=False)
        thread, outcome = _in_thread(lambda: booking_submit(user_id=user.pk, show_id=show.pk, quantity=2))
        thread.join(30)
    booking, created = outcome["result"]
    assert created
    booking_decide_batch(show_id=show.pk)
    booking.refresh_from_db()
    assert (booking.status, booking.failure_reason) == ("failed", "show_cancelled")
    assert not BookedSeat.objects.filter(show=show).exists()
    with pytest.raises(ValidationFailed):
        booking_submit(user_id=user.pk, show_id=show.pk, quantity=2)
