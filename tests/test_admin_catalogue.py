"""The admin writes the catalogue through the same services as the API: the same rules hold,
and a refusal is a form error on the page, never a 500 or a silent bad row."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from core import selectors
from core.models import Booking, Screen, Show
from core.services.decisions import booking_decide_batch
from core.services.submission import booking_submit
from tests.factories import MovieFactory, ScreenFactory, ShowFactory, UserFactory
from tests.locking import execute, holder, pending_booking


def _show_form(show, **changes) -> dict:
    starts_at = changes.pop("starts_at", show.starts_at)
    return {
        "movie": show.movie_id,
        "screen": show.screen_id,
        "starts_at_0": starts_at.strftime("%Y-%m-%d"),
        "starts_at_1": starts_at.strftime("%H:%M:%S"),
        "price": str(show.price),
        **changes,
    }


def _screen_form(screen, **changes) -> dict:
    return {"name": screen.name, "rows": screen.rows, "seats_per_row": screen.seats_per_row, **changes}


def _errors(response) -> str:
    assert response.status_code == 200, "the page is shown again with the error"
    form = response.context["adminform"].form
    return " ".join(str(message) for messages in form.errors.values() for message in messages)


def _hour(dt):
    return dt.replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def confirmed_show(show):
    booking_submit(user_id=UserFactory().pk, show_id=show.pk, seats=["E8", "A1"])
    booking_decide_batch(show_id=show.pk)
    return show


# ---- shows -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_show_added_in_the_admin_ends_when_its_movie_does(admin_client):
    movie, screen = MovieFactory(duration_minutes=95), ScreenFactory()
    starts_at = _hour(timezone.now() + timedelta(days=2))
    response = admin_client.post(
        "/admin/core/show/add/", _show_form(Show(movie=movie, screen=screen, starts_at=starts_at, price="8.00"))
    )
    assert response.status_code == 302
    show = Show.objects.get(movie=movie)
    assert (show.starts_at, show.ends_at) == (starts_at, starts_at + timedelta(minutes=95))


@pytest.mark.django_db
def test_a_paying_show_added_in_the_admin_defaults_to_the_deployment_setting(admin_client, settings):
    settings.BOOKING_PAYMENT_REQUIRED = True
    page = admin_client.get("/admin/core/show/add/")
    assert page.context["adminform"].form.fields["payment_required"].initial is True
    movie, screen = MovieFactory(), ScreenFactory()
    starts_at = _hour(timezone.now() + timedelta(days=2))
    form = _show_form(Show(movie=movie, screen=screen, starts_at=starts_at, price="8.00"), payment_required="on")
    assert admin_client.post("/admin/core/show/add/", form).status_code == 302
    assert Show.objects.get(movie=movie).payment_required is True


@pytest.mark.django_db
def test_moving_a_show_in_the_admin_moves_its_end(admin_client, show):
    later = _hour(show.starts_at + timedelta(days=1))
    response = admin_client.post(f"/admin/core/show/{show.pk}/change/", _show_form(show, starts_at=later))
    assert response.status_code == 302
    show.refresh_from_db()
    assert (show.starts_at, show.ends_at) == (later, later + timedelta(minutes=show.movie.duration_minutes))


@pytest.mark.django_db
def test_a_show_moved_onto_another_in_the_admin_is_a_form_error(admin_client, show):
    other = ShowFactory(screen=show.screen, starts_at=_hour(show.starts_at + timedelta(days=1)))
    response = admin_client.post(
        f"/admin/core/show/{show.pk}/change/", _show_form(show, starts_at=other.starts_at + timedelta(minutes=30))
    )
    assert "already has a show at that time" in _errors(response)
    assert Show.objects.get(pk=show.pk).starts_at == show.starts_at


@pytest.mark.django_db
def test_a_show_cannot_be_moved_to_an_inactive_movie_in_the_admin(admin_client, show):
    inactive = MovieFactory(is_active=False)
    response = admin_client.post(f"/admin/core/show/{show.pk}/change/", _show_form(show, movie=inactive.pk))
    assert "not active" in _errors(response)
    assert Show.objects.get(pk=show.pk).movie_id == show.movie_id


@pytest.mark.django_db
def test_a_show_with_bookings_keeps_its_time_screen_and_movie_in_the_admin(admin_client, confirmed_show):
    show = confirmed_show
    page = admin_client.get(f"/admin/core/show/{show.pk}/change/")
    assert {"movie", "screen", "starts_at", "payment_required"} <= set(page.context["adminform"].readonly_fields)
    response = admin_client.post(
        f"/admin/core/show/{show.pk}/change/",
        _show_form(show, starts_at=show.starts_at + timedelta(days=3), screen=ScreenFactory().pk, price="20.00"),
    )
    assert response.status_code == 302
    moved = Show.objects.get(pk=show.pk)
    assert (moved.starts_at, moved.screen_id, moved.ends_at) == (show.starts_at, show.screen_id, show.ends_at)
    assert str(moved.price) == "20.00"  # the price is still the operator's to change


# ---- screens ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_screen_does_not_shrink_under_held_seats_in_the_admin(admin_client, confirmed_show):
    screen = confirmed_show.screen  # 5 rows of 8 seats; E8 and A1 held
    for change in ({"rows": 4}, {"seats_per_row": 7}):
        response = admin_client.post(f"/admin/core/screen/{screen.pk}/change/", _screen_form(screen, **change))
        assert "E8" in _errors(response)
    assert (Screen.objects.get(pk=screen.pk).rows, Screen.objects.get(pk=screen.pk).seats_per_row) == (5, 8)
    show = selectors.show_get(show_id=confirmed_show.pk)
    assert (show.total_seats, show.available_seats) == (40, 38)

    # Growing, or shrinking where nothing is held, is fine.
    assert admin_client.post(f"/admin/core/screen/{screen.pk}/change/", _screen_form(screen, rows=6)).status_code == 302
    Booking.objects.filter(show=confirmed_show).update(status="cancelled")
    confirmed_show.booked_seats.all().delete()
    assert admin_client.post(f"/admin/core/screen/{screen.pk}/change/", _screen_form(screen, rows=2)).status_code == 302
    assert Screen.objects.get(pk=screen.pk).rows == 2


@pytest.mark.django_db
def test_screen_names_stay_unique_whatever_their_case_in_the_admin(admin_client):
    ScreenFactory(name="Grand Hall")
    screen = ScreenFactory(name="Small")
    response = admin_client.post(f"/admin/core/screen/{screen.pk}/change/", _screen_form(screen, name="grand hall"))
    assert "exists" in _errors(response)
    response = admin_client.post("/admin/core/screen/add/", {"name": "GRAND HALL", "rows": 3, "seats_per_row": 3})
    assert "exists" in _errors(response)
    assert Screen.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_decision_waiting_while_its_screen_shrinks_uses_the_new_layout():
    """The decider blocked on the show's lock, which the resize holds, reads the screen
    only once it has the lock: a seat the resize removed is not sold."""
    from core.services.catalogue import screen_update  # new with this rule: the other tests run without it

    show, user = ShowFactory(screen__rows=5, screen__seats_per_row=8), UserFactory()
    # No wake-up: a live worker of another test must not decide it before the resize.
    booking = pending_booking(user, show, seats=["E8"])
    outcome: dict = {}

    def decide():
        try:
            outcome["decided"] = booking_decide_batch(show_id=show.pk)
        finally:
            connection.close()

    with transaction.atomic():
        screen_update(screen=show.screen, rows=4)
        thread = threading.Thread(target=decide, daemon=True)
        thread.start()
        end = time.monotonic() + 30
        while time.monotonic() < end and thread.is_alive() and not _lock_waiters():
            time.sleep(0.02)
    thread.join(30)
    booking.refresh_from_db()
    assert (booking.status, booking.failure_reason) == ("failed", "seats_unavailable")
    assert selectors.show_get(show_id=show.pk).available_seats == 32


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        # Inside a transaction pg_stat_activity is a snapshot taken once: take a fresh one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_show_held_by_another_transaction_keeps_the_form_and_asks_to_save_again(admin_client):
    """A decision or a cancellation holding the show past the lock timeout: the form comes
    back with what the operator typed and says to save again (not a bare 503 page), and
    nothing changed."""
    show = ShowFactory()
    with holder() as other:
        execute(other, "SELECT 1 FROM core_show WHERE id = %s FOR NO KEY UPDATE", show.pk)
        response = admin_client.post(f"/admin/core/show/{show.pk}/change/", _show_form(show, price="99.00"))
    assert "save again" in " ".join(response.context["adminform"].form.non_field_errors())
    assert str(Show.objects.get(pk=show.pk).price) == "12.50"
