"""The waiting list: joining a sold-out show's list, offers made from freed seats first come
first served, taking or missing an offer, leaving.

The races of an offer with the other transitions of its show (a join, a leave, a confirm, an
expiry) are proved with two database connections (tests/locking.py): whichever commits first
under the show's lock wins, and the other sees what it left.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core import selectors
from core.exceptions import Conflict, NotFound, ValidationFailed
from core.models import BookedSeat, Booking, WaitlistEntry, WebhookDelivery, WebhookEndpoint
from core.services.cancellation import booking_cancel
from core.services.catalogue import show_cancel
from core.services.decisions import booking_decide_batch
from core.services.holds import holds_expire_due, holds_expire_show
from core.services.retention import bookings_purge_old
from core.services.waitlist import booking_confirm_offer, waitlist_join, waitlist_leave
from tests.factories import ShowFactory, UserFactory
from tests.locking import Background, breakpoint_on, pending_booking, wait_until_waiting

ROW_LOCK_WAITS = {"transactionid", "tuple"}


def small_show(**kwargs):
    """One row of four seats."""
    return ShowFactory(screen__rows=1, screen__seats_per_row=4, price=Decimal("8.00"), **kwargs)


def won(user, show, seats) -> Booking:
    booking = pending_booking(user, show, seats=seats)
    booking_decide_batch(show_id=show.pk)
    booking.refresh_from_db()
    assert booking.status in ("confirmed", "held"), booking.status
    return booking


def sold_out(show) -> tuple[Booking, Booking]:
    """Two bookings of two seats each fill the show."""
    return won(UserFactory(), show, ["A1", "A2"]), won(UserFactory(), show, ["A3", "A4"])


def entry(entry_id) -> WaitlistEntry:
    """An entry as the API reads it: with its position and offer."""
    found = selectors.waitlist_list(user_id=WaitlistEntry.objects.get(pk=entry_id).user_id).get(pk=entry_id)
    return found


def state(entry_id) -> tuple[str, int | None]:
    found = entry(entry_id)
    return found.public_status, found.position


def seats_of(booking) -> list[str]:
    return sorted(BookedSeat.objects.filter(booking_id=booking.pk).values_list("seat_label", flat=True))


def offer_of(entry_id) -> Booking:
    return Booking.objects.get(pk=WaitlistEntry.objects.get(pk=entry_id).booking_id)


def overdue(booking) -> None:
    Booking.objects.filter(pk=booking.pk).update(hold_expires_at=timezone.now() - timedelta(seconds=1))


# ---- Joining and leaving ------------------------------------------------------------------


@pytest.mark.django_db
def test_joining_a_sold_out_show_queues_in_order():
    show = small_show()
    sold_out(show)
    first = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    second = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    assert (first.public_status, first.position) == ("waiting", 1)
    assert (second.public_status, second.position) == ("waiting", 2)
    waitlist_leave(user_id=first.user_id, entry_id=first.pk)
    assert state(first.pk) == ("left", None)
    assert state(second.pk) == ("waiting", 1)


@pytest.mark.django_db
def test_a_show_with_enough_free_seats_is_booked_not_waited_for():
    show = small_show()
    won(UserFactory(), show, ["A1", "A2"])
    with pytest.raises(Conflict) as refused:
        waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    assert (refused.value.code, refused.value.details) == ("seats_available", {"free": 2})
    # Three seats are more than are free: that request may wait.
    assert waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=3).position == 1


@pytest.mark.django_db
def test_a_user_waits_once_per_show_and_may_join_again_after_leaving():
    show, user = small_show(), UserFactory()
    sold_out(show)
    joined = waitlist_join(user_id=user.pk, show_id=show.pk, quantity=1)
    with pytest.raises(Conflict) as refused:
        waitlist_join(user_id=user.pk, show_id=show.pk, quantity=2)
    assert (refused.value.code, refused.value.details) == ("already_waiting", {"id": joined.pk})
    waitlist_leave(user_id=user.pk, entry_id=joined.pk)
    waitlist_leave(user_id=user.pk, entry_id=joined.pk)  # leaving twice changes nothing
    assert waitlist_join(user_id=user.pk, show_id=show.pk, quantity=2).position == 1


@pytest.mark.django_db
def test_joining_is_refused_for_shows_that_cannot_sell(settings):
    user = UserFactory()
    with pytest.raises(NotFound):
        waitlist_join(user_id=user.pk, show_id=10**12, quantity=1)
    started = small_show(starts_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(ValidationFailed) as refused:
        waitlist_join(user_id=user.pk, show_id=started.pk, quantity=1)
    assert "started" in refused.value.details["show"][0]
    cancelled = small_show(status="cancelled")
    with pytest.raises(ValidationFailed):
        waitlist_join(user_id=user.pk, show_id=cancelled.pk, quantity=1)
    for quantity in (0, settings.BOOKING_MAX_SEATS + 1):
        with pytest.raises(ValidationFailed) as refused:
            waitlist_join(user_id=user.pk, show_id=small_show().pk, quantity=quantity)
        assert "quantity" in refused.value.details


@pytest.mark.django_db
def test_joining_past_the_per_user_seat_limit_is_refused(settings):
    settings.BOOKING_MAX_SEATS_PER_USER_PER_SHOW = 3
    show, user = small_show(), UserFactory()
    won(user, show, ["A1", "A2"])
    won(UserFactory(), show, ["A3", "A4"])
    with pytest.raises(Conflict) as refused:
        waitlist_join(user_id=user.pk, show_id=show.pk, quantity=2)
    assert refused.value.code == "limit_exceeded"


@pytest.mark.django_db
def test_only_ones_own_entry_can_be_left():
    show = small_show()
    sold_out(show)
    joined = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    with pytest.raises(NotFound):
        waitlist_leave(user_id=UserFactory().pk, entry_id=joined.pk)
    assert state(joined.pk) == ("waiting", 1)


# ---- Offers --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_cancel_offers_its_seats_to_the_first_entry_as_a_held_booking(settings):
    settings.WAITLIST_OFFER_MINUTES = 3
    show = small_show()
    leaving, _ = sold_out(show)
    first = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    second = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)

    offer = offer_of(first.pk)
    assert (offer.status, offer.offer, offer.user_id, offer.quantity) == ("held", True, first.user_id, 2)
    assert offer.hold_expires_at - offer.decided_at == timedelta(minutes=3)
    assert seats_of(offer) == sorted(offer.seats) == ["A1", "A2"]
    assert offer.total == Decimal("16.00")
    assert offer.reference
    assert [(line.ticket_type, line.amount) for line in offer.sold_lines] == [("adult", Decimal("8.00"))] * 2
    assert state(first.pk) == ("offered", None)
    assert entry(first.pk).offer_expires_at == offer.hold_expires_at
    assert state(second.pk) == ("waiting", 1)


@pytest.mark.django_db
def test_the_first_entry_that_fits_is_offered_and_a_larger_one_keeps_its_place():
    show = small_show()
    leaving, _ = sold_out(show)
    big = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=3)
    one = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    another = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    last = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    assert state(big.pk) == ("waiting", 1)
    assert state(one.pk)[0] == state(another.pk)[0] == "offered"
    assert state(last.pk) == ("waiting", 2)
    assert sorted(offer_of(one.pk).seats + offer_of(another.pk).seats) == ["A1", "A2"]


@pytest.mark.django_db
def test_offers_never_exceed_the_seats_freed():
    show = small_show()
    won(UserFactory(), show, ["A1"])
    leaving = won(UserFactory(), show, ["A2"])
    won(UserFactory(), show, ["A3"])
    # A4 is free, but two seats are more than that: the entry waits.
    pair = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    # One seat was freed: two are free now (A2, A4), but an offer of two would give away a
    # seat that was on sale already (the pending queue's). Both stay on sale.
    assert state(pair.pk) == ("waiting", 1)
    assert not Booking.objects.filter(show=show, offer=True).exists()
    assert BookedSeat.objects.filter(show=show).count() == 2


@pytest.mark.django_db
def test_cancelling_a_pending_booking_frees_nothing_and_offers_nothing():
    show, user = small_show(), UserFactory()
    sold_out(show)
    waiting = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    pending = pending_booking(user, show, seats=["A1"])
    booking_cancel(booking_id=pending.pk, user=user)
    assert state(waiting.pk) == ("waiting", 1)


@pytest.mark.django_db
def test_an_expired_offer_lapses_and_passes_to_the_next_entry():
    show = small_show()
    leaving, _ = sold_out(show)
    first = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    second = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    missed = offer_of(first.pk)
    overdue(missed)
    assert holds_expire_due() == 1
    missed.refresh_from_db()
    assert (missed.status, seats_of(missed)) == ("expired", [])
    assert state(first.pk) == ("lapsed", None)
    assert state(second.pk) == ("offered", None)
    assert seats_of(offer_of(second.pk)) == ["A1", "A2"]
    with pytest.raises(Conflict) as refused:
        booking_confirm_offer(booking_id=missed.pk, user=missed.user)
    assert refused.value.code == "hold_expired"


@pytest.mark.django_db
def test_a_declined_offer_passes_to_the_next_entry():
    show = small_show()
    leaving, _ = sold_out(show)
    first = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    second = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    declined = offer_of(first.pk)
    with pytest.raises(Conflict) as refused:
        waitlist_leave(user_id=first.user_id, entry_id=first.pk)
    assert (refused.value.code, refused.value.details) == ("already_offered", {"booking": str(declined.pk)})
    booking_cancel(booking_id=declined.pk, user=declined.user)
    assert state(first.pk) == ("lapsed", None)
    assert state(second.pk) == ("offered", None)


@pytest.mark.django_db
def test_a_free_shows_offer_is_taken_by_confirming_it():
    show = small_show()
    leaving, kept = sold_out(show)
    first = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    offer = offer_of(first.pk)
    with pytest.raises(NotFound):
        booking_confirm_offer(booking_id=offer.pk, user=UserFactory())
    taken = booking_confirm_offer(booking_id=offer.pk, user=offer.user)
    assert (taken.status, taken.confirmed_at is not None, seats_of(taken)) == ("confirmed", True, ["A1", "A2"])
    assert state(first.pk) == ("accepted", None)
    # Again: unchanged. A booking the decider made is no offer.
    assert booking_confirm_offer(booking_id=offer.pk, user=offer.user).confirmed_at == taken.confirmed_at
    with pytest.raises(Conflict) as refused:
        booking_confirm_offer(booking_id=kept.pk, user=kept.user)
    assert refused.value.code == "not_an_offer"
    # An accepted offer cancelled later stays accepted.
    booking_cancel(booking_id=offer.pk, user=offer.user)
    assert state(first.pk) == ("accepted", None)


@pytest.mark.django_db
def test_partners_hear_of_an_offer_once_it_is_taken_or_missed():
    WebhookEndpoint.objects.create(name="partner", url="http://127.0.0.1:9/hook", secret="k")
    show = small_show()
    leaving, other = sold_out(show)
    taker = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    misser = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    booking_cancel(booking_id=other.pk, user=other.user)
    taken, missed = offer_of(taker.pk), offer_of(misser.pk)
    # A hold is no event (its payment or confirmation is).
    assert not WebhookDelivery.objects.filter(booking_id__in=[taken.pk, missed.pk]).exists()
    booking_confirm_offer(booking_id=taken.pk, user=taken.user)
    overdue(missed)
    holds_expire_due()
    deliveries = WebhookDelivery.objects.filter(booking_id__in=[taken.pk, missed.pk])
    events = dict(deliveries.values_list("booking_id", "event"))
    assert events == {taken.pk: "booking.confirmed", missed.pk: "booking.expired"}


@pytest.mark.django_db
def test_an_offer_past_its_deadline_or_cancelled_cannot_be_confirmed():
    show = small_show()
    leaving, other = sold_out(show)
    late = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    gone = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    booking_cancel(booking_id=other.pk, user=other.user)
    overdue(offer_of(late.pk))  # the expiry job has not run yet
    with pytest.raises(Conflict) as refused:
        booking_confirm_offer(booking_id=offer_of(late.pk).pk, user=offer_of(late.pk).user)
    assert refused.value.code == "hold_expired"
    cancelled = booking_cancel(booking_id=offer_of(gone.pk).pk, user=offer_of(gone.pk).user)
    with pytest.raises(Conflict) as refused:
        booking_confirm_offer(booking_id=cancelled.pk, user=cancelled.user)
    assert refused.value.code == "booking_cancelled"


@pytest.mark.django_db
def test_a_paying_shows_offer_is_held_like_any_hold_and_is_not_confirmed_without_payment():
    show = small_show(payment_required=True)
    leaving, _ = sold_out(show)
    first = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    offer = offer_of(first.pk)
    assert (offer.status, offer.offer) == ("held", True)
    with pytest.raises(Conflict) as refused:
        booking_confirm_offer(booking_id=offer.pk, user=offer.user)
    assert refused.value.code == "payment_required"


@pytest.mark.django_db
def test_an_entry_whose_user_is_at_a_limit_is_passed_over(settings):
    settings.BOOKING_MAX_PENDING_PER_USER = 1
    show = small_show()
    leaving, _ = sold_out(show)
    busy, free = UserFactory(), UserFactory()
    busy_entry = waitlist_join(user_id=busy.pk, show_id=show.pk, quantity=1)
    free_entry = waitlist_join(user_id=free.pk, show_id=show.pk, quantity=1)
    pending_booking(busy, small_show(), seats=["A1"])  # the busy user's one open booking
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    assert state(busy_entry.pk) == ("waiting", 1)
    assert state(free_entry.pk) == ("offered", None)


@pytest.mark.django_db
def test_an_entry_that_would_pass_the_seat_limit_is_passed_over(settings):
    settings.BOOKING_MAX_SEATS_PER_USER_PER_SHOW = 2
    show, greedy = small_show(), UserFactory()
    won(greedy, show, ["A1"])
    leaving = won(UserFactory(), show, ["A2", "A3"])
    won(UserFactory(), show, ["A4"])
    greedy_entry = waitlist_join(user_id=greedy.pk, show_id=show.pk, quantity=1)
    settings.BOOKING_MAX_SEATS_PER_USER_PER_SHOW = 1  # lowered since it joined
    other = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    assert state(greedy_entry.pk) == ("waiting", 1)
    assert state(other.pk) == ("offered", None)


@pytest.mark.django_db
def test_freed_seats_go_to_the_waiting_list_before_the_pending_queue():
    show = small_show()
    leaving, _ = sold_out(show)
    waiting = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    queued = pending_booking(UserFactory(), show, seats=["A1"])
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    booking_decide_batch(show_id=show.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.failure_reason) == ("failed", "seats_unavailable")
    assert state(waiting.pk) == ("offered", None)


@pytest.mark.django_db
def test_cancelling_the_show_closes_its_list_and_cancels_its_offers():
    show = small_show()
    leaving, _ = sold_out(show)
    offered = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    waiting = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    show_cancel(show=show)
    assert state(offered.pk) == ("lapsed", None)
    assert state(waiting.pk) == ("closed", None)
    assert offer_of(offered.pk).status == "cancelled"


@pytest.mark.django_db
def test_a_waiting_entry_of_a_started_show_reads_closed():
    show = small_show()
    sold_out(show)
    waiting = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=1)
    type(show).objects.filter(pk=show.pk).update(starts_at=timezone.now() - timedelta(minutes=1))
    assert state(waiting.pk) == ("closed", None)


@pytest.mark.django_db
def test_retention_deletes_the_entries_of_long_past_shows():
    show = small_show()
    leaving, _ = sold_out(show)
    offered = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    waiting = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    type(show).objects.filter(pk=show.pk).update(
        starts_at=timezone.now() - timedelta(days=400), ends_at=timezone.now() - timedelta(days=400)
    )
    assert bookings_purge_old(retention_days=365, batch_size=100) == 3
    assert not WaitlistEntry.objects.filter(pk__in=[offered.pk, waiting.pk]).exists()


# ---- Races, with two connections --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_join_waits_for_a_cancel_and_then_sees_the_freed_seats():
    show = small_show()
    leaving, _ = sold_out(show)
    with breakpoint_on("core_booking", "UPDATE", "NEW.status = 'cancelled'") as release:
        cancel = Background(lambda: booking_cancel(booking_id=leaving.pk, user=leaving.user))
        assert wait_until_waiting(cancel, on="advisory")  # the cancel holds the show's row
        join = Background(lambda: waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2))
        assert wait_until_waiting(join) in ROW_LOCK_WAITS
        release()
        cancel.join()
        with pytest.raises(Conflict) as refused:
            join.join()
    # Never a waiting entry beside free seats it could have had.
    assert refused.value.code == "seats_available"
    assert not WaitlistEntry.objects.filter(show=show).exists()


@pytest.mark.django_db(transaction=True)
def test_a_join_that_commits_first_is_offered_the_seats_of_a_cancel():
    show = small_show()
    leaving, _ = sold_out(show)
    joiner = UserFactory()
    with breakpoint_on("core_waitlistentry", "INSERT") as release:
        join = Background(lambda: waitlist_join(user_id=joiner.pk, show_id=show.pk, quantity=2))
        assert wait_until_waiting(join, on="advisory")
        cancel = Background(lambda: booking_cancel(booking_id=leaving.pk, user=leaving.user))
        assert wait_until_waiting(cancel) in ROW_LOCK_WAITS
        release()
        joined = join.join()
        cancel.join()
    assert state(joined.pk) == ("offered", None)


@pytest.mark.django_db(transaction=True)
def test_a_leave_that_waits_for_an_offer_is_refused_and_the_offer_stands():
    show = small_show()
    leaving, _ = sold_out(show)
    waiting = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    with breakpoint_on("core_booking", "INSERT", "NEW.offer") as release:
        cancel = Background(lambda: booking_cancel(booking_id=leaving.pk, user=leaving.user))
        assert wait_until_waiting(cancel, on="advisory")  # the offer is being written
        leave = Background(lambda: waitlist_leave(user_id=waiting.user_id, entry_id=waiting.pk))
        assert wait_until_waiting(leave) in ROW_LOCK_WAITS
        release()
        cancel.join()
        with pytest.raises(Conflict) as refused:
            leave.join()
    assert refused.value.code == "already_offered"
    assert state(waiting.pk) == ("offered", None)


@pytest.mark.django_db(transaction=True)
def test_a_leave_that_commits_first_passes_the_offer_to_the_next_entry():
    show = small_show()
    leaving, _ = sold_out(show)
    first = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    second = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    with breakpoint_on("core_waitlistentry", "UPDATE", "NEW.status = 'left'") as release:
        leave = Background(lambda: waitlist_leave(user_id=first.user_id, entry_id=first.pk))
        assert wait_until_waiting(leave, on="advisory")
        cancel = Background(lambda: booking_cancel(booking_id=leaving.pk, user=leaving.user))
        assert wait_until_waiting(cancel) in ROW_LOCK_WAITS
        release()
        leave.join()
        cancel.join()
    assert state(first.pk) == ("left", None)
    assert state(second.pk) == ("offered", None)


@pytest.mark.django_db(transaction=True)
def test_a_confirm_that_commits_first_wins_over_the_expiry():
    show = small_show()
    leaving, _ = sold_out(show)
    first = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    second = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    offer = offer_of(first.pk)
    after_deadline = offer.hold_expires_at + timedelta(seconds=1)
    with breakpoint_on("core_booking", "UPDATE", "NEW.status = 'confirmed'") as release:
        confirm = Background(lambda: booking_confirm_offer(booking_id=offer.pk, user=offer.user))
        assert wait_until_waiting(confirm, on="advisory")
        expiry = Background(lambda: holds_expire_show(show_id=show.pk, now=after_deadline))
        assert wait_until_waiting(expiry) in ROW_LOCK_WAITS
        release()
        assert confirm.join().status == "confirmed"
        assert expiry.join() == []
    assert state(first.pk) == ("accepted", None)
    assert seats_of(offer) == ["A1", "A2"]
    assert state(second.pk) == ("waiting", 1)


@pytest.mark.django_db(transaction=True)
def test_an_expiry_that_commits_first_wins_over_the_confirm_and_offers_the_next_entry():
    show = small_show()
    leaving, _ = sold_out(show)
    first = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    second = waitlist_join(user_id=UserFactory().pk, show_id=show.pk, quantity=2)
    booking_cancel(booking_id=leaving.pk, user=leaving.user)
    offer = offer_of(first.pk)
    after_deadline = offer.hold_expires_at + timedelta(seconds=1)
    with breakpoint_on("core_booking", "UPDATE", "NEW.status = 'expired'") as release:
        expiry = Background(lambda: holds_expire_show(show_id=show.pk, now=after_deadline))
        assert wait_until_waiting(expiry, on="advisory")
        confirm = Background(lambda: booking_confirm_offer(booking_id=offer.pk, user=offer.user))
        assert wait_until_waiting(confirm) in ROW_LOCK_WAITS
        release()
        assert [b.pk for b in expiry.join()] == [offer.pk]
        with pytest.raises(Conflict) as refused:
            confirm.join()
    assert refused.value.code == "hold_expired"
    assert state(first.pk) == ("lapsed", None)
    assert state(second.pk) == ("offered", None)
