"""The database constraints hold even when code above them is bypassed."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from core.models import BookedSeat, Booking
from tests.factories import MovieFactory, ShowFactory

pytestmark = pytest.mark.django_db


def _booking(show, user, **kwargs) -> Booking:
    return Booking.objects.create(show=show, user=user, quantity=1, **kwargs)


def test_a_seat_cannot_be_held_twice(show, user, other_user):
    first, second = _booking(show, user), _booking(show, other_user)
    BookedSeat.objects.create(show=show, seat_label="A1", booking=first)
    with pytest.raises(IntegrityError), transaction.atomic():
        BookedSeat.objects.create(show=show, seat_label="A1", booking=second)
    assert BookedSeat.objects.filter(show=show, seat_label="A1").count() == 1


def test_the_same_seat_label_on_two_shows_is_fine(show, user):
    other_show = ShowFactory(starts_at=show.starts_at + timedelta(days=1), screen=show.screen)
    BookedSeat.objects.create(show=show, seat_label="A1", booking=_booking(show, user))
    BookedSeat.objects.create(show=other_show, seat_label="A1", booking=_booking(other_show, user))


@pytest.mark.parametrize("label", ["A01", "a1", " A1", "A1 ", "A0", "AA1", "1A", ""])
def test_seat_labels_have_one_spelling(show, user, label):
    with pytest.raises(IntegrityError), transaction.atomic():
        BookedSeat.objects.create(show=show, seat_label=label, booking=_booking(show, user))


def test_two_scheduled_shows_cannot_overlap_on_one_screen(show):
    with pytest.raises(IntegrityError), transaction.atomic():
        ShowFactory(screen=show.screen, starts_at=show.starts_at + timedelta(minutes=30))


def test_back_to_back_and_cancelled_shows_may_share_a_screen(show):
    ShowFactory(screen=show.screen, starts_at=show.ends_at, movie=MovieFactory())
    cancelled = ShowFactory(screen=show.screen, starts_at=show.starts_at, status="cancelled")
    assert cancelled.pk


def test_an_idempotency_key_is_unique_per_user(show, user, other_user):
    _booking(show, user, idempotency_key="k1")
    _booking(show, other_user, idempotency_key="k1")
    with pytest.raises(IntegrityError), transaction.atomic():
        _booking(show, user, idempotency_key="k1")


def test_bookings_get_increasing_acceptance_sequence(show, user):
    first, second = _booking(show, user), _booking(show, user)
    assert first.sequence is not None
    assert second.sequence > first.sequence


def test_a_failed_booking_needs_a_reason(show, user):
    with pytest.raises(IntegrityError), transaction.atomic():
        _booking(show, user, status="failed")
