"""Retention: beat deletes the bookings of long-past shows and expired refresh tokens."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from booking_api.config.celery import app
from core.models import BookedSeat, Booking, BookingLine, RefreshTokenFamily, Show
from core.services.retention import bookings_purge_old
from tests.factories import PASSWORD, ShowFactory, UserFactory
from workers import maintenance

pytestmark = pytest.mark.django_db


def _booking(show, user, status, *seats):
    booking = Booking.objects.create(
        show=show,
        user=user,
        status=status,
        quantity=max(1, len(seats)),
        seats=list(seats),
        failure_reason="sold_out" if status == "failed" else None,
    )
    if status == "confirmed":
        BookedSeat.objects.bulk_create(BookedSeat(show=show, booking=booking, seat_label=label) for label in seats)
        BookingLine.objects.bulk_create(
            BookingLine(booking=booking, seat_label=label, seat_category="standard", ticket_type="adult", amount=1)
            for label in seats
        )
    return booking


@pytest.fixture
def history(user):
    now = timezone.now()
    old = ShowFactory(starts_at=now - timedelta(days=400))
    recent = ShowFactory(starts_at=now - timedelta(days=30))
    future = ShowFactory()
    doomed = [
        _booking(old, user, "confirmed", "A1", "A2"),
        _booking(old, user, "failed"),
        _booking(old, user, "cancelled"),
        _booking(old, UserFactory(), "confirmed", "B1"),
        _booking(old, user, "failed"),
    ]
    kept = [
        _booking(old, user, "pending"),  # the recovery job fails it first
        _booking(recent, user, "confirmed", "A1"),
        _booking(future, user, "confirmed", "A1"),
        _booking(future, user, "pending"),
    ]
    return {"old": old, "doomed": doomed, "kept": kept}


def test_bookings_of_shows_past_the_retention_go_with_their_seats_in_batches(history):
    assert bookings_purge_old(retention_days=365, batch_size=2) == 5
    assert set(Booking.objects.values_list("pk", flat=True)) == {b.pk for b in history["kept"]}
    assert not BookedSeat.objects.filter(show=history["old"]).exists()
    assert BookedSeat.objects.count() == 2  # the recent and the future show's
    assert BookingLine.objects.count() == 2  # their lines: the old show's went with its bookings
    assert Show.objects.filter(pk=history["old"].pk).exists(), "the show itself stays"
    assert bookings_purge_old(retention_days=365, batch_size=2) == 0


def test_a_zero_retention_keeps_everything(history):
    assert bookings_purge_old(retention_days=0, batch_size=2) == 0
    assert Booking.objects.count() == 9


def test_the_purge_job_reads_its_settings(history, settings):
    settings.BOOKING_RETENTION_DAYS = 20
    settings.BOOKING_RETENTION_BATCH = 1
    assert maintenance.purge_old_bookings() == 6  # the show of 30 days ago too
    assert Booking.objects.count() == 3


def test_the_token_job_flushes_expired_refresh_tokens(user):
    expired, valid = RefreshToken.for_user(user), RefreshToken.for_user(user)
    expired.blacklist()
    OutstandingToken.objects.filter(jti=expired["jti"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    maintenance.flush_expired_tokens()
    assert list(OutstandingToken.objects.values_list("jti", flat=True)) == [valid["jti"]]
    assert not BlacklistedToken.objects.exists()


def test_the_token_job_deletes_families_whose_newest_token_expired(api, user, settings):
    def login():
        return api.post("/api/v1/auth/login", {"username": user.username, "password": PASSWORD}).json()["refresh"]

    lifetime = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    rotated, fresh = login(), login()
    api.post("/api/v1/auth/refresh", {"refresh": rotated})
    api.post("/api/v1/auth/refresh", {"refresh": fresh})
    assert RefreshTokenFamily.objects.count() == 2
    old = timezone.now() - lifetime - timedelta(minutes=1)
    root = {name: RefreshToken(token, verify=False)["jti"] for name, token in [("rotated", rotated), ("fresh", fresh)]}
    RefreshTokenFamily.objects.filter(root_jti=root["rotated"]).update(created_at=old, rotated_at=old)
    maintenance.flush_expired_tokens()
    assert list(RefreshTokenFamily.objects.values_list("root_jti", flat=True)) == [root["fresh"]]


def test_beat_schedules_both_jobs():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"maintenance.purge_old_bookings", "maintenance.flush_expired_tokens"} <= scheduled
    assert scheduled <= set(app.tasks), "every scheduled task is registered with the worker"
