"""Every bulk status update and every booking transition under real concurrency, with two
(or three) connections stepped deterministically (see tests/locking.py): the lock order
(the show row first, then the booking rows) and status conditions judged on the rows as
they are once the wait is over."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import BookedSeat, Booking, Show
from core.services.cancellation import booking_cancel, bookings_expire_started
from core.services.catalogue import show_cancel, show_update
from core.services.decisions import booking_decide_batch, booking_record_failed_attempt
from tests.factories import ShowFactory, UserFactory
from tests.locking import Background, breakpoint_on, execute, holder, pending_booking, wait_until_waiting

pytestmark = pytest.mark.django_db(transaction=True)

ROW_LOCK_WAITS = {"transactionid", "tuple"}


def _book(user, show, *, seats: list[str] | None = None) -> Booking:
    return pending_booking(user, show, seats=seats)


def _state(booking) -> tuple:
    booking.refresh_from_db()
    return booking.status, booking.failure_reason, BookedSeat.objects.filter(booking=booking).count()


def _starting_soon(seconds: float = 2.0) -> Show:
    return ShowFactory(starts_at=timezone.now() + timedelta(seconds=seconds), screen__rows=3, screen__seats_per_row=4)


def _wait_until_started(show: Show) -> None:
    while timezone.now() <= show.starts_at + timedelta(milliseconds=50):
        time.sleep(0.05)


def test_the_sweep_never_overwrites_a_booking_a_decision_confirms():
    """The recovery sweep runs while a decider that will confirm a booking holds it; the show
    starts in between. The sweep must leave that booking to its decider, not fail it
    (`show_started`) over its held seats, and fail the rest of the show on a later run."""
    user, show = UserFactory(), _starting_soon()
    first, second = _book(user, show), _book(user, show)
    with breakpoint_on("core_bookedseat", "INSERT") as release:
        decider = Background(lambda: booking_decide_batch(show_id=show.pk, limit=1))
        assert wait_until_waiting(decider, on="advisory")  # the first booking is being confirmed
        _wait_until_started(show)
        sweep = Background(bookings_expire_started)
        wait_until_waiting(sweep, timeout=10)  # skips the show, or waits for its decider
        release()
        decided = decider.join()
        expired = sweep.join()
    assert _state(first) == ("confirmed", None, 1)
    assert _state(second) == ("pending", None, 0)
    assert ([b.pk for b in decided], expired) == ([first.pk], 0)
    # The next sweep finds the show free and fails what is still pending.
    assert bookings_expire_started() == 1
    assert _state(second) == ("failed", "show_started", 0)


def test_a_decision_waits_for_the_sweep_and_then_finds_nothing_to_decide():
    user, show = UserFactory(), ShowFactory(screen__rows=3, screen__seats_per_row=4)
    booking = _book(user, show)
    Show.objects.filter(pk=show.pk).update(starts_at=timezone.now() - timedelta(minutes=1))
    with breakpoint_on("core_booking", "UPDATE", "NEW.failure_reason = 'show_started'") as release:
        sweep = Background(bookings_expire_started)
        assert wait_until_waiting(sweep, on="advisory")
        decider = Background(lambda: booking_decide_batch(show_id=show.pk))
        assert wait_until_waiting(decider) in ROW_LOCK_WAITS
        release()
        assert sweep.join() == 1
        assert decider.join() == []
    assert _state(booking) == ("failed", "show_started", 0)


def test_a_show_cancellation_waits_for_a_decision_and_cancels_what_it_confirmed():
    user, show = UserFactory(), ShowFactory(screen__rows=3, screen__seats_per_row=4)
    booking = _book(user, show)
    with breakpoint_on("core_bookedseat", "INSERT") as release:
        decider = Background(lambda: booking_decide_batch(show_id=show.pk))
        assert wait_until_waiting(decider, on="advisory")
        cancel = Background(lambda: show_cancel(show=show))
        assert wait_until_waiting(cancel) in ROW_LOCK_WAITS
        release()
        decider.join()
        cancel.join()
    assert _state(booking) == ("cancelled", None, 0)
    assert Show.objects.get(pk=show.pk).status == Show.Status.CANCELLED


def test_a_decision_waits_for_a_show_cancellation_and_then_finds_nothing_to_decide():
    user, show = UserFactory(), ShowFactory(screen__rows=3, screen__seats_per_row=4)
    booking = _book(user, show)
    with breakpoint_on("core_booking", "UPDATE", "NEW.failure_reason = 'show_cancelled'") as release:
        cancel = Background(lambda: show_cancel(show=show))
        assert wait_until_waiting(cancel, on="advisory")
        decider = Background(lambda: booking_decide_batch(show_id=show.pk))
        assert wait_until_waiting(decider) in ROW_LOCK_WAITS
        release()
        cancel.join()
        assert decider.join() == []
    assert _state(booking) == ("failed", "show_cancelled", 0)


def test_a_user_cancel_waits_for_a_decision_and_then_frees_what_it_confirmed():
    user, show = UserFactory(), ShowFactory(screen__rows=3, screen__seats_per_row=4)
    booking = _book(user, show)
    with breakpoint_on("core_bookedseat", "INSERT") as release:
        decider = Background(lambda: booking_decide_batch(show_id=show.pk))
        assert wait_until_waiting(decider, on="advisory")
        cancel = Background(lambda: booking_cancel(booking_id=booking.pk, user=user))
        assert wait_until_waiting(cancel) in ROW_LOCK_WAITS
        release()
        decider.join()
        assert cancel.join().status == "cancelled"
    assert _state(booking) == ("cancelled", None, 0)


def test_a_user_cancel_and_a_show_cancellation_do_not_deadlock():
    """The cancellation of a show frees every seat of the show and then cancels the
    confirmed bookings; a user's cancel of one of them must not hold that booking while
    waiting for its seats. A third connection holds one seat row so that the show's
    cancellation reaches the seats first and the user's cancel queues behind it: with the
    booking locked before the show, this was a deadlock (one of them failed with 40P01)."""
    user, show = UserFactory(), ShowFactory(screen__rows=3, screen__seats_per_row=4)
    booking = _book(user, show, seats=["A1"])
    booking_decide_batch(show_id=show.pk)
    with holder() as seats:
        execute(seats, "SELECT 1 FROM core_bookedseat WHERE booking_id = %s FOR UPDATE", str(booking.pk))
        by_show = Background(lambda: show_cancel(show=show))
        assert wait_until_waiting(by_show) in ROW_LOCK_WAITS
        by_user = Background(lambda: booking_cancel(booking_id=booking.pk, user=user))
        assert wait_until_waiting(by_user) in ROW_LOCK_WAITS
        seats.rollback()
        by_show.join()
        assert by_user.join().status == "cancelled"
    assert _state(booking) == ("cancelled", None, 0)
    assert Show.objects.get(pk=show.pk).status == Show.Status.CANCELLED


def _transitions(user, staff, show, booking):
    return {
        "user cancel": lambda: booking_cancel(booking_id=booking.pk, user=user),
        "staff cancel": lambda: booking_cancel(booking_id=booking.pk, user=staff),
        "decision": lambda: booking_decide_batch(show_id=show.pk),
        "failed attempt": lambda: booking_record_failed_attempt(show_id=show.pk),
        "show cancellation": lambda: show_cancel(show=show),
        "show update": lambda: show_update(show=show, price="13.00"),
    }


@pytest.mark.parametrize(
    "transition",
    ["user cancel", "staff cancel", "decision", "failed attempt", "show cancellation", "show update"],
)
def test_every_transition_locks_the_show_row_before_any_booking_row(transition):
    """While another session holds the show row (as a decider does), a transition waits for
    it before it has locked any booking row of the show, so it cannot be one half of a
    deadlock; once the show row is free it runs to its end."""
    user, staff, show = UserFactory(), UserFactory(is_staff=True), ShowFactory(screen__rows=3, screen__seats_per_row=4)
    booking = _book(user, show)
    with holder() as decider:
        execute(decider, "SELECT 1 FROM core_show WHERE id = %s FOR NO KEY UPDATE", show.pk)
        task = Background(_transitions(user, staff, show, booking)[transition])
        assert wait_until_waiting(task, timeout=10) in ROW_LOCK_WAITS, "it must wait for the show row"
        # No booking row of the show is locked by the waiting transaction.
        execute(decider, "SELECT 1 FROM core_booking WHERE show_id = %s FOR UPDATE NOWAIT", show.pk)
        decider.commit()
        task.join()


def test_the_sweep_skips_a_show_whose_row_is_held_and_locks_none_of_its_bookings():
    user, show = UserFactory(), _starting_soon(seconds=0.5)
    booking = _book(user, show)
    _wait_until_started(show)
    with holder() as decider:
        execute(decider, "SELECT 1 FROM core_show WHERE id = %s FOR NO KEY UPDATE", show.pk)
        sweep = Background(bookings_expire_started)
        assert wait_until_waiting(sweep, timeout=10) is None
        assert sweep.join() == 0
    assert bookings_expire_started() == 1
    assert _state(booking) == ("failed", "show_started", 0)
