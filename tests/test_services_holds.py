"""Holds: a paying show's won booking is held with a deadline, and the expiry job frees it.

The races of an expiry with the other transitions of the same booking are proved with two
database connections (tests/locking.py): whichever commits first under the show's lock wins.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from core.exceptions import Conflict, TooManyRequests
from core.models import BookedSeat, Booking, Show
from core.services.cancellation import booking_cancel
from core.services.decisions import booking_decide_batch
from core.services.holds import holds_expire_due, holds_expire_show
from core.services.submission import booking_submit
from tests.factories import ScreenFactory, ShowFactory, UserFactory
from tests.locking import Background, breakpoint_on, pending_booking, wait_until_waiting

ROW_LOCK_WAITS = {"transactionid", "tuple"}


def paying_show(**kwargs):
    return ShowFactory(payment_required=True, screen__rows=3, screen__seats_per_row=4, price=Decimal("9.50"), **kwargs)


def decided(booking) -> Booking:
    booking_decide_batch(show_id=booking.show_id)
    return Booking.objects.get(pk=booking.pk)


def seats_of(booking) -> list[str]:
    return sorted(BookedSeat.objects.filter(booking=booking).values_list("seat_label", flat=True))


def overdue(booking) -> None:
    Booking.objects.filter(pk=booking.pk).update(hold_expires_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db
def test_a_paying_show_holds_the_won_seats_with_a_deadline_and_a_price(settings):
    settings.BOOKING_HOLD_MINUTES = 7
    booking = decided(pending_booking(UserFactory(), paying_show(), seats=["A1", "A2"]))
    assert booking.status == "held"
    assert booking.confirmed_at is None
    assert booking.decided_at is not None
    assert booking.hold_expires_at - booking.decided_at == timedelta(minutes=7)
    assert seats_of(booking) == ["A1", "A2"]
    assert booking.total == Decimal("19.00")
    assert booking.reference
    assert [line.seat_label for line in booking.sold_lines] == ["A1", "A2"]


@pytest.mark.django_db
def test_a_free_show_still_confirms_at_once():
    booking = decided(pending_booking(UserFactory(), ShowFactory(), seats=["A1"]))
    assert (booking.status, booking.hold_expires_at) == ("confirmed", None)
    assert booking.confirmed_at == booking.decided_at


@pytest.mark.django_db
def test_held_seats_are_taken_for_the_next_booking():
    show = paying_show()
    decided(pending_booking(UserFactory(), show, seats=["A1"]))
    rival = decided(pending_booking(UserFactory(), show, seats=["A1"]))
    assert (rival.status, rival.failure_reason) == ("failed", "seats_unavailable")


@pytest.mark.django_db
def test_the_expiry_job_expires_only_holds_past_their_deadline_and_frees_their_seats():
    show = paying_show()
    late = decided(pending_booking(UserFactory(), show, seats=["A1"]))
    on_time = decided(pending_booking(UserFactory(), show, seats=["A2"]))
    overdue(late)
    assert holds_expire_due() == 1
    late.refresh_from_db()
    on_time.refresh_from_db()
    assert (late.status, seats_of(late)) == ("expired", [])
    assert (on_time.status, seats_of(on_time)) == ("held", ["A2"])
    # Run again (late, twice, anywhere): nothing more to do.
    assert holds_expire_due() == 0
    # The freed seat sells again.
    again = decided(pending_booking(UserFactory(), show, seats=["A1"]))
    assert again.status == "held"


@pytest.mark.django_db
def test_an_expired_booking_cannot_be_cancelled_but_a_held_one_can():
    user, show = UserFactory(), paying_show()
    expired = decided(pending_booking(user, show, seats=["A1"]))
    overdue(expired)
    holds_expire_due()
    with pytest.raises(Conflict) as refused:
        booking_cancel(booking_id=expired.pk, user=user)
    assert refused.value.code == "booking_expired"
    held = decided(pending_booking(user, show, seats=["A2"]))
    cancelled = booking_cancel(booking_id=held.pk, user=user)
    assert (cancelled.status, seats_of(held)) == ("cancelled", [])


@pytest.mark.django_db
def test_held_bookings_count_against_the_pending_limit(settings):
    settings.BOOKING_MAX_PENDING_PER_USER = 1
    user, show = UserFactory(), paying_show()
    first, _ = booking_submit(user_id=user.pk, show_id=show.pk, seats=["A1"])
    assert decided(first).status == "held"
    with pytest.raises(TooManyRequests):
        booking_submit(user_id=user.pk, show_id=show.pk, seats=["A2"])


@pytest.mark.django_db
def test_held_seats_count_against_the_per_user_seat_limit(settings):
    settings.BOOKING_MAX_SEATS_PER_USER_PER_SHOW = 2
    user, show = UserFactory(), paying_show()
    decided(pending_booking(user, show, seats=["A1", "A2"]))
    over = decided(pending_booking(user, show, seats=["A3"]))
    assert (over.status, over.failure_reason) == ("failed", "limit_exceeded")


@pytest.mark.django_db
def test_the_api_creates_shows_with_the_deployment_default_and_fixes_it_once_booked(staff_api, settings):
    template = ShowFactory()
    body = {
        "movie": template.movie_id,
        "screen": ScreenFactory().pk,
        "starts_at": (template.starts_at + timedelta(days=2)).isoformat(),
        "price": "8.00",
    }
    settings.BOOKING_PAYMENT_REQUIRED = True
    created = staff_api.post("/api/v1/shows", body, format="json")
    assert (created.status_code, created.json()["payment_required"]) == (201, True)
    settings.BOOKING_PAYMENT_REQUIRED = False
    free = staff_api.post("/api/v1/shows", {**body, "screen": ScreenFactory().pk}, format="json").json()
    assert free["payment_required"] is False
    decided(pending_booking(UserFactory(), Show.objects.get(pk=free["id"]), seats=["A1"]))
    refused = staff_api.patch(f"/api/v1/shows/{free['id']}", {"payment_required": True}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (409, "show_has_bookings")


@pytest.mark.django_db
def test_a_held_booking_reads_with_its_deadline_through_the_api(user, user_api):
    booking = decided(pending_booking(user, paying_show(), seats=["B2"]))
    body = user_api.get(f"/api/v1/bookings/{booking.pk}").json()
    assert (body["status"], body["seats"], body["offer"]) == ("held", ["B2"], False)
    assert body["hold_expires_at"] is not None
    assert body["total"] == "9.50"


def test_the_expiry_job_is_scheduled_often():
    schedule = django_settings.CELERY_BEAT_SCHEDULE["expire-holds"]
    assert schedule["task"] == "maintenance.expire_holds"
    assert schedule["schedule"] == django_settings.BOOKING_HOLD_SWEEP_SECONDS <= 5


# ---- Races, with two connections --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_cancel_that_commits_first_wins_over_the_expiry():
    user, show = UserFactory(), paying_show()
    booking = decided(pending_booking(user, show, seats=["A1"]))
    overdue(booking)
    with breakpoint_on("core_booking", "UPDATE", "NEW.status = 'cancelled'") as release:
        cancel = Background(lambda: booking_cancel(booking_id=booking.pk, user=user))
        assert wait_until_waiting(cancel, on="advisory")  # the cancel holds the show's row
        expiry = Background(lambda: holds_expire_show(show_id=show.pk, now=timezone.now()))
        assert wait_until_waiting(expiry) in ROW_LOCK_WAITS
        release()
        assert cancel.join().status == "cancelled"
        assert expiry.join() == []
    booking.refresh_from_db()
    assert (booking.status, seats_of(booking)) == ("cancelled", [])


@pytest.mark.django_db(transaction=True)
def test_an_expiry_that_commits_first_wins_over_the_cancel():
    user, show = UserFactory(), paying_show()
    booking = decided(pending_booking(user, show, seats=["A1"]))
    overdue(booking)
    with breakpoint_on("core_booking", "UPDATE", "NEW.status = 'expired'") as release:
        expiry = Background(lambda: holds_expire_show(show_id=show.pk, now=timezone.now()))
        assert wait_until_waiting(expiry, on="advisory")
        cancel = Background(lambda: booking_cancel(booking_id=booking.pk, user=user))
        assert wait_until_waiting(cancel) in ROW_LOCK_WAITS
        release()
        assert [b.pk for b in expiry.join()] == [booking.pk]
        with pytest.raises(Conflict) as refused:
            cancel.join()
    assert refused.value.code == "booking_expired"
    booking.refresh_from_db()
    assert (booking.status, seats_of(booking)) == ("expired", [])


@pytest.mark.django_db(transaction=True)
def test_a_decision_waits_for_an_expiry_and_then_gets_the_freed_seat():
    show = paying_show()
    booking = decided(pending_booking(UserFactory(), show, seats=["A1"]))
    overdue(booking)
    rival = pending_booking(UserFactory(), show, seats=["A1"])
    with breakpoint_on("core_booking", "UPDATE", "NEW.status = 'expired'") as release:
        expiry = Background(lambda: holds_expire_show(show_id=show.pk, now=timezone.now()))
        assert wait_until_waiting(expiry, on="advisory")
        decider = Background(lambda: booking_decide_batch(show_id=show.pk))
        assert wait_until_waiting(decider) in ROW_LOCK_WAITS
        release()
        expiry.join()
        decider.join()
    rival.refresh_from_db()
    assert (rival.status, seats_of(rival)) == ("held", ["A1"])
