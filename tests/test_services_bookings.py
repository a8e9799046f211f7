"""The booking services in-process, against the real PostgreSQL and Redis."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.exceptions import Conflict, NotFound, ValidationFailed
from core.models import BookedSeat, Booking
from core.selectors import booking_get, bookings_set_queue_positions
from core.services.cancellation import booking_cancel, bookings_expire_started
from core.services.catalogue import show_cancel
from core.services.decisions import booking_decide_batch, booking_decide_next
from core.services.submission import booking_submit
from tests.factories import ShowFactory, UserFactory
from tests.locking import poison_booking

pytestmark = pytest.mark.django_db


def submit(user, show, **kwargs) -> Booking:
    booking, created = booking_submit(user_id=user.pk, show_id=show.pk, **kwargs)
    assert created
    return booking


def decide_all(show) -> None:
    while booking_decide_batch(show_id=show.pk):
        pass


def refreshed(*bookings):
    for booking in bookings:
        booking.refresh_from_db()
    return bookings


# ---- submit ------------------------------------------------------------------------------


def test_submit_writes_a_pending_booking_and_queues_after_commit(user, show, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        booking = submit(user, show, seats=["A1", "A2"])
    assert booking.status == "pending"
    assert booking.quantity == 2
    assert len(callbacks) == 1  # the wake-up is queued only once the row is committed


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"seats": ["A1"], "quantity": 1}, "non_field_errors"),
        ({}, "non_field_errors"),
        ({"seats": []}, "seats"),
        ({"seats": ["A1", "A1"]}, "seats"),
        ({"seats": ["Z1"]}, "seats"),
        ({"seats": ["A9"]}, "seats"),
        ({"seats": ["a1"]}, "seats"),
        ({"seats": ["A01"]}, "seats"),
        ({"seats": [" A1"]}, "seats"),
        ({"seats": [f"B{n}" for n in range(1, 9)] + ["C1", "C2", "C3"]}, "seats"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 11}, "quantity"),
    ],
)
def test_submit_validation(user, show, kwargs, field):
    with pytest.raises(ValidationFailed) as error:
        booking_submit(user_id=user.pk, show_id=show.pk, **kwargs)
    assert field in error.value.details
    assert not Booking.objects.exists()


def test_submit_refuses_unknown_started_and_cancelled_shows(user, show):
    with pytest.raises(ValidationFailed) as error:
        booking_submit(user_id=user.pk, show_id=987654, quantity=1)
    assert "show" in error.value.details
    started = ShowFactory(starts_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(ValidationFailed):
        booking_submit(user_id=user.pk, show_id=started.pk, quantity=1)
    show_cancel(show=show)
    with pytest.raises(ValidationFailed):
        booking_submit(user_id=user.pk, show_id=show.pk, quantity=1)


def test_the_seat_limit_is_configurable(user, show, settings):
    settings.BOOKING_MAX_SEATS = 2
    with pytest.raises(ValidationFailed):
        booking_submit(user_id=user.pk, show_id=show.pk, quantity=3)
    submit(user, show, quantity=2)


def test_idempotent_replay_returns_the_original(user, show):
    first = submit(user, show, seats=["A1"], idempotency_key="key-1")
    again, created = booking_submit(user_id=user.pk, show_id=show.pk, seats=["A1"], idempotency_key="key-1")
    assert not created
    assert again.pk == first.pk
    assert Booking.objects.count() == 1


def test_same_key_with_another_body_is_a_conflict(user, show):
    submit(user, show, seats=["A1"], idempotency_key="key-1")
    with pytest.raises(Conflict) as error:
        booking_submit(user_id=user.pk, show_id=show.pk, seats=["A2"], idempotency_key="key-1")
    assert error.value.code == "idempotency_key_reused"


def test_a_replay_is_answered_even_once_the_show_has_started(user, show):
    """Submission inserts first and looks the key up only when refused: a replay that
    would now fail validation still returns the original booking."""
    first = submit(user, show, quantity=2, idempotency_key="key-1")
    show.starts_at = timezone.now() - timedelta(minutes=1)
    show.save()
    again, created = booking_submit(user_id=user.pk, show_id=show.pk, quantity=2, idempotency_key="key-1")
    assert (again.pk, created) == (first.pk, False)


def test_a_reused_key_with_an_invalid_body_is_a_conflict(user, show):
    submit(user, show, seats=["A1"], idempotency_key="key-1")
    with pytest.raises(Conflict):
        booking_submit(user_id=user.pk, show_id=show.pk, seats=["Z99"], idempotency_key="key-1")


def test_submit_returns_the_row_as_stored(user, show):
    booking = submit(user, show, seats=["B2", "B1"], idempotency_key="k")
    stored = Booking.objects.get(pk=booking.pk)
    assert (booking.sequence, booking.created_at, booking.seats) == (stored.sequence, stored.created_at, ["B2", "B1"])
    assert (stored.status, stored.quantity, stored.idempotency_key) == ("pending", 2, "k")
    assert stored.request_fingerprint == booking.request_fingerprint != ""


# ---- queue position ------------------------------------------------------------------------


def positions(staff, bookings) -> list:
    return [booking_get(booking_id=b.pk, user=staff).queue_position for b in bookings]


def test_the_queue_position_counts_the_pending_bookings_of_the_show_ahead(user, other_user, staff, show):
    other_show = ShowFactory()
    elsewhere = [submit(other_user, other_show, quantity=1) for _ in range(2)]
    decided = submit(user, show, seats=["E1"])
    decide_all(show)
    queue = [submit(user if n % 2 else other_user, show, quantity=1) for n in range(3)]
    elsewhere.append(submit(other_user, other_show, quantity=1))
    # Counted in the INSERT itself: neither the other show's nor the decided booking is ahead.
    assert [b.queue_position for b in queue] == [0, 1, 2]
    assert [b.queue_position for b in elsewhere] == [0, 1, 2]
    assert positions(staff, queue) == [0, 1, 2]
    assert positions(staff, [decided]) == [None]

    booking_cancel(booking_id=queue[0].pk, user=other_user)
    assert positions(staff, queue) == [None, 0, 1]
    decide_all(show)
    assert positions(staff, queue) == [None, None, None]
    assert positions(staff, elsewhere) == [0, 1, 2]


def test_a_position_is_counted_up_to_the_limit_only(user, staff, show, settings):
    """A deep backlog costs a submission or a poll at most the limit's worth of index entries."""
    settings.BOOKING_QUEUE_POSITION_LIMIT = 2
    queue = [submit(user, show, quantity=1) for _ in range(5)]
    assert [b.queue_position for b in queue] == [0, 1, 2, 2, 2]
    assert positions(staff, queue) == [0, 1, 2, 2, 2]


def test_a_replay_tells_the_original_bookings_queue_position(user, other_user, show):
    submit(other_user, show, quantity=1)
    first = submit(user, show, quantity=2, idempotency_key="key-1")
    again, created = booking_submit(user_id=user.pk, show_id=show.pk, quantity=2, idempotency_key="key-1")
    assert (again.pk, created, again.queue_position) == (first.pk, False, 1)


def test_positions_of_a_page_cost_one_query(user, other_user, show, django_assert_num_queries):
    other_show = ShowFactory()
    page = [submit(user, show if n % 3 else other_show, quantity=1) for n in range(7)]
    submit(user, show, seats=["A1"])
    decide_all(other_show)
    page = list(Booking.objects.filter(pk__in=[b.pk for b in page]).order_by("sequence"))
    with django_assert_num_queries(1):
        bookings_set_queue_positions(bookings=page)
    assert [b.queue_position for b in page] == [None, 0, 1, None, 2, 3, None]
    with django_assert_num_queries(0):
        bookings_set_queue_positions(bookings=[b for b in page if b.status != "pending"])


def test_keys_are_per_user(user, other_user, show):
    submit(user, show, quantity=1, idempotency_key="shared")
    submit(other_user, show, quantity=1, idempotency_key="shared")
    assert Booking.objects.count() == 2


# ---- decide ------------------------------------------------------------------------------


def test_explicit_seats_all_or_nothing(user, other_user, show):
    first = submit(user, show, seats=["A1", "A2"])
    second = submit(other_user, show, seats=["A2", "A3"])
    third = submit(other_user, show, seats=["A3", "A4"])
    decide_all(show)
    refreshed(first, second, third)
    assert (first.status, first.seats) == ("confirmed", ["A1", "A2"])
    assert (second.status, second.failure_reason) == ("failed", "seats_unavailable")
    assert third.status == "confirmed"
    held = set(BookedSeat.objects.filter(show=show).values_list("seat_label", flat=True))
    assert held == {"A1", "A2", "A3", "A4"}
    assert second.decided_at is not None
    assert second.confirmed_at is None


def test_quantity_gets_the_best_adjacent_seats(user, show):
    # 5 rows x 8 seats: the middle row is C, its centre seats 4 and 5.
    first = submit(user, show, quantity=4)
    second = submit(user, show, quantity=4)  # row C has only 2 + 2 left: the next best row
    pair = submit(user, show, quantity=2)  # fits beside the first block in row C
    decide_all(show)
    refreshed(first, second, pair)
    assert first.seats == ["C3", "C4", "C5", "C6"]
    assert second.seats == ["B3", "B4", "B5", "B6"]
    assert pair.seats in (["C1", "C2"], ["C7", "C8"])


def test_quantity_is_split_only_when_no_row_has_room(user, show):
    # Leave only every other seat free: no two adjacent free seats anywhere.
    holder = Booking.objects.create(user=user, show=show, quantity=20, status="confirmed")
    BookedSeat.objects.bulk_create(
        BookedSeat(show=show, booking=holder, seat_label=f"{row}{n}") for row in "ABCDE" for n in (2, 4, 6, 8)
    )
    booking = submit(user, show, quantity=3)
    decide_all(show)
    assert refreshed(booking)[0].status == "confirmed"
    assert len(booking.seats) == 3
    assert BookedSeat.objects.filter(show=show).count() == 23


def test_sold_out_when_fewer_seats_are_free_than_asked(user, show):
    # Four users, as one may hold at most BOOKING_MAX_SEATS_PER_USER_PER_SHOW (10) seats.
    big = [submit(UserFactory(), show, quantity=10) for _ in range(4)]  # all 40 seats, split where needed
    too_many = submit(user, show, quantity=2)
    decide_all(show)
    assert all(b.status == "confirmed" for b in refreshed(*big))
    assert refreshed(too_many)[0].failure_reason == "sold_out"


def test_earlier_accepted_booking_wins_the_seat(user, other_user, show):
    early = submit(user, show, seats=["C4"])
    late = submit(other_user, show, seats=["C4"])
    decided = booking_decide_batch(show_id=show.pk)
    assert [b.pk for b in decided] == [early.pk, late.pk]
    refreshed(early, late)
    assert early.status == "confirmed"
    assert late.status == "failed"
    assert early.decided_at <= late.decided_at


def test_deciding_twice_changes_nothing(user, show):
    submit(user, show, seats=["A1"])
    assert len(booking_decide_batch(show_id=show.pk)) == 1
    snapshot = list(Booking.objects.values())
    assert booking_decide_batch(show_id=show.pk) == []
    assert list(Booking.objects.values()) == snapshot
    assert BookedSeat.objects.count() == 1


def test_batches_decide_in_acceptance_order(user, show):
    bookings = [submit(user, show, quantity=1) for _ in range(7)]
    first = booking_decide_batch(show_id=show.pk, limit=3)
    second = booking_decide_batch(show_id=show.pk, limit=10)
    assert [b.pk for b in first + second] == [b.pk for b in bookings]


def test_bookings_of_a_started_show_fail(user, show):
    booking = submit(user, show, quantity=1)
    show.starts_at = timezone.now() - timedelta(minutes=1)
    show.save()
    decide_all(show)
    assert refreshed(booking)[0].failure_reason == "show_started"


def test_the_recovery_job_fails_pending_bookings_of_started_shows(user, show):
    booking = submit(user, show, quantity=1)
    other = submit(user, ShowFactory(), quantity=1)
    show.starts_at = timezone.now() - timedelta(seconds=1)
    show.save()
    assert bookings_expire_started() == 1
    refreshed(booking, other)
    assert (booking.status, booking.failure_reason) == ("failed", "show_started")
    assert other.status == "pending"


def test_a_poison_booking_fails_after_bounded_attempts_and_blocks_nobody(user, show, settings):
    """A booking whose decision raises every time (here PostgreSQL refuses to confirm it)."""
    settings.BOOKING_MAX_DECIDE_ATTEMPTS = 3
    poison = submit(user, show, seats=["A1"])
    after = [submit(user, show, quantity=1) for _ in range(3)]
    poison_booking(poison.pk)
    rounds = 0
    while booking_decide_next(show_id=show.pk):
        rounds += 1
        assert rounds < 20, "the drain must end"
    refreshed(poison, *after)
    assert (poison.status, poison.failure_reason) == ("failed", "processing_error")
    assert poison.decide_attempts == 3
    assert all(b.status == "confirmed" for b in after)
    assert not BookedSeat.objects.filter(booking=poison).exists()


def test_seats_held_outside_the_decider_are_respected(user, other_user, show):
    """The decider reads what is held in PostgreSQL, whoever wrote it (here: the admin)."""
    booking = submit(user, show, seats=["A1"])
    holder = Booking.objects.create(user=other_user, show=show, quantity=1, status="confirmed", seats=["A1"])
    BookedSeat.objects.create(show=show, seat_label="A1", booking=holder)
    decided = booking_decide_batch(show_id=show.pk)
    assert [b.failure_reason for b in decided] == ["seats_unavailable"]
    assert refreshed(booking)[0].status == "failed"


# ---- cancel ------------------------------------------------------------------------------


def test_cancel_a_confirmed_booking_frees_its_seats_at_once(user, other_user, show):
    booking = submit(user, show, seats=["A1", "A2"])
    decide_all(show)
    cancelled = booking_cancel(booking_id=booking.pk, user=user)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelled_at is not None
    assert not BookedSeat.objects.filter(show=show).exists()
    again = submit(other_user, show, seats=["A1", "A2"])
    decide_all(show)
    assert refreshed(again)[0].status == "confirmed"


def test_a_cancelled_pending_booking_is_never_confirmed(user, show):
    booking = submit(user, show, seats=["A1"])
    booking_cancel(booking_id=booking.pk, user=user)
    assert booking_decide_batch(show_id=show.pk) == []
    assert refreshed(booking)[0].status == "cancelled"
    assert not BookedSeat.objects.exists()


def test_cancel_rules(user, other_user, show, staff):
    booking = submit(user, show, seats=["A1"])
    with pytest.raises(NotFound):
        booking_cancel(booking_id=booking.pk, user=other_user)
    booking_cancel(booking_id=booking.pk, user=user)
    assert booking_cancel(booking_id=booking.pk, user=user).status == "cancelled"  # idempotent

    taken = submit(other_user, show, seats=["A2"])
    loser = submit(user, show, seats=["A2"])
    decide_all(show)
    with pytest.raises(Conflict) as error:
        booking_cancel(booking_id=loser.pk, user=user)
    assert error.value.code == "booking_failed"

    show.starts_at = timezone.now() - timedelta(minutes=1)
    show.save()
    with pytest.raises(Conflict) as error:
        booking_cancel(booking_id=taken.pk, user=staff)
    assert error.value.code == "show_started"


def test_staff_may_cancel_anyones_booking(user, staff, show):
    booking = submit(user, show, quantity=2)
    assert booking_cancel(booking_id=booking.pk, user=staff).status == "cancelled"


def test_cancelling_a_show_fails_pending_and_cancels_confirmed(user, show):
    confirmed = submit(user, show, quantity=2)
    decide_all(show)
    pending = submit(UserFactory(), show, quantity=1)
    show_cancel(show=show)
    refreshed(confirmed, pending)
    assert confirmed.status == "cancelled"
    assert (pending.status, pending.failure_reason) == ("failed", "show_cancelled")
    assert not BookedSeat.objects.filter(show=show).exists()
