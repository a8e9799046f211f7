"""The Retry-After rule of a pending booking (core/polling.py): pure, no database."""

import pytest

from core.models import Booking
from core.polling import booking_retry_after, poll_retry_after


def rule(position: int, *, base: int = 1, cap: int = 10, rate: float = 100.0) -> int:
    return poll_retry_after(position, base=base, cap=cap, decisions_per_second=rate)


def test_the_first_ones_wait_the_base():
    assert [rule(p) for p in (0, 1, 99, 100)] == [1, 1, 1, 1]
    assert [rule(p, base=3) for p in (0, 100, 300)] == [3, 3, 3]


def test_further_back_waits_its_expected_turn_rounded_up():
    assert [rule(p) for p in (101, 200, 201, 450)] == [2, 2, 3, 5]
    assert [rule(p, rate=0.5) for p in (0, 1, 2)] == [1, 2, 4]


def test_never_more_than_the_cap():
    assert rule(10**9) == 10
    assert rule(5000, cap=30) == 30


def test_always_a_whole_second_or_more_whatever_the_settings():
    assert rule(0, base=0) == 1
    assert rule(0, base=0, cap=0) == 1
    assert rule(-5, base=0) == 1
    assert rule(10, rate=0) == 10  # no estimate: as long as allowed
    assert rule(10, base=5, cap=2) == 2  # a cap below the base wins


@pytest.mark.parametrize("status", ["confirmed", "failed", "cancelled"])
def test_a_decided_booking_has_nothing_to_poll_for(status):
    assert booking_retry_after(Booking(status=status, quantity=1)) is None


def test_a_pending_booking_follows_its_queue_position(settings):
    settings.BOOKING_POLL_RETRY_AFTER, settings.BOOKING_POLL_RETRY_AFTER_MAX = 1, 4
    settings.BOOKING_POLL_DECISIONS_PER_SECOND = 10
    waits = []
    for position in [0, 10, 11, 25, 1000]:
        booking = Booking(status="pending", quantity=1)
        booking.queue_position = position
        waits.append(booking_retry_after(booking))
    assert waits == [1, 1, 2, 3, 4]
