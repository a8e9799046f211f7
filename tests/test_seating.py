"""Seat labels and the allocator (pure functions)."""

import pytest

from core.allocation import SeatAllocator
from core.seating import Layout, SeatCategories

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
    # The next pair: the middle row has runs of 3 left, and any pair there would leave a
    # single seat alone, so the next best row takes it, centred.
    assert allocator.take_best(2) in (["B4", "B5"], ["D4", "D5"])
    # A run of 4 and more seats keeps the pair in the middle row, with no seat left alone.
    allocator = SeatAllocator(LAYOUT, taken=["C4"])
    assert allocator.take_best(2) == ["C5", "C6"]


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


# ---- Seat categories -------------------------------------------------------------------

CATS = SeatCategories.of(premium_rows=["E"], accessible_seats=["A1", "A2"], companion_seats=["A3", "A4"])


def test_category_marks_are_validated():
    bad = SeatCategories.of(premium_rows=["Z", "A"], accessible_seats=["A1", "A1"], companion_seats=["A9", "A2"])
    errors = bad.problems(LAYOUT)
    assert set(errors) == {"premium_rows", "accessible_seats", "companion_seats"}
    both = SeatCategories.of(accessible_seats=["A1"], companion_seats=["A1"]).problems(LAYOUT)
    assert "companion_seats" in both
    assert CATS.problems(LAYOUT) == {}


def test_every_seat_has_one_category():
    allocator = SeatAllocator(LAYOUT, [], CATS)
    assert [allocator.category_of(label) for label in ("A1", "A3", "A5", "E1", "C4")] == [
        "accessible",
        "companion",
        "standard",
        "premium",
        "standard",
    ]


def test_best_available_stays_within_the_category():
    allocator = SeatAllocator(LAYOUT, [], CATS)
    assert allocator.take_best(2, "premium") == ["E4", "E5"]
    assert allocator.take_best(2) == ["C4", "C5"]
    # 8 premium seats: 6 left, so 7 is sold out though standard seats are free.
    assert allocator.take_best(7, "premium") is None
    assert allocator.free_in("premium") == 6


def test_standard_requests_never_get_wheelchair_or_companion_seats():
    # Only row A is free: its standard seats are A5..A8.
    taken = [f"{row}{n}" for row in "BCDE" for n in range(1, 9)]
    allocator = SeatAllocator(LAYOUT, taken, CATS)
    assert allocator.take_best(4) == ["A5", "A6", "A7", "A8"]
    assert allocator.take_best(1) is None


def test_accessible_requests_get_a_space_and_its_companions():
    allocator = SeatAllocator(LAYOUT, [], CATS)
    seats = allocator.take_best(2, accessible=True)
    assert sorted(seats) == ["A2", "A3"]
    # The second space, with the remaining companion seat and then the nearest standard seat.
    assert sorted(allocator.take_best(3, accessible=True)) == ["A1", "A4", "A5"]
    # No wheelchair space left.
    assert allocator.take_best(1, accessible=True) is None


def test_no_single_seat_left_when_another_block_avoids_it():
    # Row C (the middle row) has free runs of 3: any pair there leaves one seat alone; row B
    # has a run of 4 at one end, where a pair leaves two.
    taken = ["C4", "C8"] + [f"B{n}" for n in (5, 6, 7, 8)] + [f"{r}{n}" for r in "ADE" for n in range(1, 9)]
    allocator = SeatAllocator(LAYOUT, taken)
    assert allocator.take_best(2) in (["B1", "B2"], ["B3", "B4"])


def test_a_single_seat_is_left_only_when_every_choice_leaves_one():
    allocator = SeatAllocator(Layout(1, 3), [])
    assert allocator.take_best(2) in (["A1", "A2"], ["A2", "A3"])


def test_no_categories_means_no_premium_seats():
    assert SeatAllocator(LAYOUT, []).take_best(1, "premium") is None
