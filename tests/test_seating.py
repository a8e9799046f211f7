"""Seat labels and the allocator (pure functions)."""

import pytest

from core.seating import Layout, SeatAllocator

LAYOUT = Layout(rows=5, seats_per_row=8)


@pytest.mark.parametrize(("label", "pos"), [("A1", (0, 0)), ("E8", (4, 7)), ("C4", (2, 3))])
def test_parse_valid(label, pos):
    assert LAYOUT.parse(label) == pos


@pytest.mark.parametrize(
    "label",
    ["A01", "a1", " A1", "A1 ", "A0", "F1", "A9", "AA1", "", "A", "1", None, 3, "\uff211", "A1\n", "A\u0661"],
)
def test_parse_refuses_everything_else(label):
    assert LAYOUT.parse(label) is None


def test_labels_cover_the_layout():
    labels = [label for label, _, _ in LAYOUT.seats()]
    assert len(labels) == 40
    assert labels[:2] == ["A1", "A2"]
    assert labels[-1] == "E8"


def test_exact_is_all_or_nothing():
    allocator = SeatAllocator(LAYOUT, taken=["A2"])
    assert allocator.take_exact(["A1", "A2"]) is False
    assert allocator.take_exact(["A1", "A3"]) is True
    assert allocator.take_exact(["A1"]) is False
    assert allocator.free_count == 40 - 3


def test_quantity_prefers_the_middle_row_and_centre_seats():
    allocator = SeatAllocator(LAYOUT, taken=[])
    assert allocator.take_best(2) == ["C4", "C5"]
    # The next pair: the same middle row, as close to the centre as the free run allows.
    assert allocator.take_best(2) in (["C2", "C3"], ["C6", "C7"])


def test_quantity_is_adjacent_when_a_row_has_room():
    # Row C has only scattered seats free; row B has a run of 4.
    taken = [f"C{n}" for n in (2, 4, 6, 8)] + ["B1", "B2", "B3", "B4"]
    allocator = SeatAllocator(LAYOUT, taken=taken)
    seats = allocator.take_best(3)
    rows = {label[0] for label in seats}
    numbers = sorted(int(label[1:]) for label in seats)
    assert len(rows) == 1
    assert numbers == list(range(numbers[0], numbers[0] + 3))


def test_quantity_is_split_when_no_row_has_room():
    # Every row has only every other seat free: no two adjacent seats anywhere.
    taken = [f"{row}{n}" for row in "ABCDE" for n in (1, 3, 5, 7)]
    allocator = SeatAllocator(LAYOUT, taken=taken)
    seats = allocator.take_best(3)
    assert len(seats) == 3
    assert len(set(seats) & set(taken)) == 0
    assert seats[0][0] == "C"  # still the best row first


def test_quantity_fails_without_taking_when_too_few_are_free():
    allocator = SeatAllocator(Layout(1, 3), taken=["A1"])
    assert allocator.take_best(3) is None
    assert allocator.free_count == 2
    assert allocator.take_best(2) == ["A2", "A3"]
    assert allocator.take_best(1) is None


def test_allocation_never_double_assigns():
    allocator = SeatAllocator(LAYOUT, taken=[])
    seen = []
    while (seats := allocator.take_best(3)) is not None:
        seen.extend(seats)
    assert len(seen) == len(set(seen)) == 39
    assert allocator.take_best(1) == [next(label for label, _, _ in LAYOUT.seats() if label not in seen)]
