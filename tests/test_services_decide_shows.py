"""One transaction decides several shows (bookings_decide_batch / bookings_decide_next, the
drain's turn of several shows): a fixed number of statements whatever the number of shows,
each show in acceptance order, a show whose row another transaction holds skipped (it stays
ready), and a poison booking of one show costing the others nothing. Real PostgreSQL and
Redis; the two-connection tests step a cancel against the decider (tests/locking.py)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import decision_queue
from core.models import BookedSeat, Booking
from core.redis import redis_client
from core.services import drain
from core.services.cancellation import booking_cancel
from core.services.decisions import booking_decide_batch, bookings_decide_batch, bookings_decide_next
from core.show_lock import show_lock_key
from tests.factories import ShowFactory, UserFactory
from tests.locking import (
    Background,
    breakpoint_on,
    execute,
    holder,
    pending_booking,
    poison_booking,
    wait_until_waiting,
)

QUEUE = "bookings-decide-shows-test"


def _small_show():
    return ShowFactory(screen__rows=1, screen__seats_per_row=2)


def _pending(show, count: int) -> list[Booking]:
    return [pending_booking(UserFactory(), show) for _ in range(count)]


def _states(bookings) -> list[str]:
    return [Booking.objects.get(pk=b.pk).status for b in bookings]


def _statements(fn) -> tuple[object, int]:
    with CaptureQueriesContext(connection) as queries:
        result = fn()
    return result, len(queries)


@pytest.mark.django_db
def test_one_transaction_decides_several_shows_each_in_acceptance_order():
    # Two seats per show, three bookings of one seat each: the two accepted first win.
    shows = [_small_show() for _ in range(4)]
    bookings = {show.pk: _pending(show, 3) for show in shows}
    alone = _small_show()
    alone_bookings = _pending(alone, 3)

    _, one_show = _statements(lambda: bookings_decide_batch(show_ids=[alone.pk]))
    decided, four_shows = _statements(lambda: bookings_decide_batch(show_ids=[s.pk for s in reversed(shows)]))

    # The same statements for four shows as for one (one transaction, set-based writes).
    assert four_shows == one_show
    assert _states(alone_bookings) == ["confirmed", "confirmed", "failed"]
    assert sorted(decided) == sorted(s.pk for s in shows)
    for show in shows:
        # Oldest accepted first: the result is in acceptance order and the first two win.
        assert [b.pk for b in decided[show.pk]] == [b.pk for b in bookings[show.pk]]
        assert _states(bookings[show.pk]) == ["confirmed", "confirmed", "failed"]
        assert Booking.objects.get(pk=bookings[show.pk][2].pk).failure_reason == "sold_out"
        assert BookedSeat.objects.filter(show=show).count() == 2
    # One transaction: one decision time for every show.
    decided_at = {b.decided_at for b in Booking.objects.filter(show__in=shows)}
    assert len(decided_at) == 1


@pytest.mark.django_db
def test_the_limit_is_per_show_and_the_one_show_form_is_the_same_batch():
    first, second = ShowFactory(), ShowFactory()
    a, b = _pending(first, 3), _pending(second, 2)
    decided = bookings_decide_batch(show_ids=[first.pk, second.pk], limit=2)
    assert [x.pk for x in decided[first.pk]] == [x.pk for x in a[:2]]
    assert [x.pk for x in decided[second.pk]] == [x.pk for x in b]
    assert [x.pk for x in booking_decide_batch(show_id=first.pk)] == [a[2].pk]
    assert bookings_decide_batch(show_ids=[first.pk, second.pk]) == {first.pk: [], second.pk: []}


@pytest.mark.django_db
def test_a_poison_booking_of_one_show_costs_the_other_shows_nothing(settings):
    settings.BOOKING_MAX_DECIDE_ATTEMPTS = 2
    poisoned, healthy = ShowFactory(), ShowFactory()
    poison = pending_booking(UserFactory(), poisoned, seats=["A1"])
    after = _pending(poisoned, 2)
    others = _pending(healthy, 3)
    poison_booking(poison.pk)
    # The shared batch fails; each show is then decided on its own: the healthy show at once.
    first = bookings_decide_next(show_ids=[poisoned.pk, healthy.pk])
    assert [b.pk for b in first[healthy.pk]] == [b.pk for b in others]
    assert _states(others) == ["confirmed"] * 3
    assert [b.pk for b in first[poisoned.pk]] == [poison.pk]  # an attempt counted against it
    rounds = 1
    while any(bookings_decide_next(show_ids=[poisoned.pk, healthy.pk]).values()):
        rounds += 1
        assert rounds < 10, "the decisions must end"
    poison.refresh_from_db()
    assert (poison.status, poison.failure_reason, poison.decide_attempts) == ("failed", "processing_error", 2)
    assert _states(after) == ["confirmed", "confirmed"]


@pytest.mark.django_db(transaction=True)
def test_a_show_held_by_a_cancel_is_skipped_and_decided_once_the_cancel_commits():
    """A cancel of a pending booking holds its show's row (paused inside its transaction)
    while the decider of several shows runs: the decider does not wait for it, decides the
    other show, and leaves the held show's bookings pending; once the cancel commits the
    next batch decides the rest, never the cancelled booking."""
    user = UserFactory()
    held_show, free_show = ShowFactory(), ShowFactory()
    cancelled = pending_booking(user, held_show)
    behind = pending_booking(UserFactory(), held_show)
    free = _pending(free_show, 2)
    with breakpoint_on("core_booking", "UPDATE", "NEW.status = 'cancelled'") as release:
        cancel = Background(lambda: booking_cancel(booking_id=cancelled.pk, user=user))
        assert wait_until_waiting(cancel, on="advisory")  # it holds the show row now
        decider = Background(lambda: bookings_decide_next(show_ids=[held_show.pk, free_show.pk]))
        assert wait_until_waiting(decider, timeout=10) is None  # finished without waiting
        decided = decider.join()
        assert set(decided) == {free_show.pk}
        assert _states(free) == ["confirmed", "confirmed"]
        assert _states([cancelled, behind]) == ["pending", "pending"]
        release()
        cancel.join()
    decided = bookings_decide_next(show_ids=[held_show.pk, free_show.pk])
    assert [b.pk for b in decided[held_show.pk]] == [behind.pk]
    assert _states([cancelled, behind]) == ["cancelled", "confirmed"]


@pytest.fixture
def private_queue(monkeypatch):
    monkeypatch.setattr(decision_queue, "bookings_queue", lambda show_id: QUEUE)
    yield QUEUE
    redis_client().delete(decision_queue.ready_key(QUEUE))


def _ready(queue: str) -> list[int]:
    return [int(member) for member in redis_client().zrange(decision_queue.ready_key(queue), 0, -1)]


@pytest.mark.django_db(transaction=True)
def test_a_turn_of_several_shows_skips_a_held_row_and_leaves_its_show_ready(private_queue, settings):
    settings.BOOKING_DRAIN_LINGER_MS = 0
    held_show, free_show, busy_show = ShowFactory(), ShowFactory(), ShowFactory()
    held = _pending(held_show, 1)
    free = _pending(free_show, 1)
    busy = _pending(busy_show, 1)
    for show in (held_show, free_show, busy_show):
        decision_queue.show_schedule(show_id=show.pk)
    redis_client().set(show_lock_key(busy_show.pk), "another drain", px=30_000)
    try:
        with holder() as other:
            execute(other, "SELECT 1 FROM core_show WHERE id = %s FOR NO KEY UPDATE", held_show.pk)
            claimed = decision_queue.shows_claim(queue=private_queue, limit=8, token="t1")
            assert claimed is not None
            shows, busy_now, _ = claimed
            assert sorted(shows) == sorted([held_show.pk, free_show.pk])
            assert busy_now == [busy_show.pk]
            # Both claimed shows' locks are this turn's; their markers are cleared.
            assert all(redis_client().get(show_lock_key(s)) == b"t1" for s in shows)
            assert not any(redis_client().exists(decision_queue.wake_key(s)) for s in shows)
            assert drain._serve_several(shows, token="t1", queue=private_queue, propagate=()) == 1
            other.rollback()
        # The free show is finished; the held and the busy ones stay ready, their locks let go.
        assert _states(free) == ["confirmed"]
        assert _states(held + busy) == ["pending", "pending"]
        assert sorted(_ready(private_queue)) == sorted([held_show.pk, busy_show.pk])
        assert not redis_client().exists(show_lock_key(held_show.pk))
        assert not redis_client().exists(show_lock_key(free_show.pk))
    finally:
        redis_client().delete(show_lock_key(busy_show.pk))
    # The next drain serves what is left.
    assert drain.drain_show(show_id=held_show.pk) == 2
    assert _ready(private_queue) == []
