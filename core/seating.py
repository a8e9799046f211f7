"""Seat labels and seat allocation: pure functions over a screen layout, no database.

A screen has `rows` rows lettered A.. and `seats_per_row` seats numbered from 1, so its
seats are labelled `A1` .. `J12`. Labels are strict: `A01`, `a1` or ` A1` are not seats,
so no spelling can alias another seat.
"""

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_ROWS = len(string.ascii_uppercase)
MAX_SEATS_PER_ROW = 200
ROW_LETTERS = string.ascii_uppercase

LABEL_PATTERN = r"^[A-Z][1-9][0-9]{0,2}$"
_LABEL_RE = re.compile(LABEL_PATTERN)


@dataclass(frozen=True, slots=True)
class Layout:
    rows: int
    seats_per_row: int

    @property
    def total(self) -> int:
        return self.rows * self.seats_per_row

    def seats(self) -> list[tuple[str, str, int]]:
        """Every seat in order, A1 first: (label, row letter, number)."""
        return [
            (f"{letter}{number}", letter, number)
            for letter in ROW_LETTERS[: self.rows]
            for number in range(1, self.seats_per_row + 1)
        ]

    def parse(self, label: object) -> tuple[int, int] | None:
        """(row index, seat index) of a label on this layout, or None if it is not a seat here."""
        position = label_position(label)
        if position is None or position[0] >= self.rows or position[1] >= self.seats_per_row:
            return None
        return position


def label_position(label: object) -> tuple[int, int] | None:
    """(row index, seat index) of a canonical label on any layout large enough, else None."""
    # fullmatch: with match, "$" also matches before a final newline, so "A1\n" was A1.
    if not isinstance(label, str) or not _LABEL_RE.fullmatch(label):
        return None
    return ord(label[0]) - ord("A"), int(label[1:]) - 1


def label_of(row: int, seat: int) -> str:
    return f"{ROW_LETTERS[row]}{seat + 1}"


class SeatAllocator:
    """Free-seat state of one show, updated as a batch of bookings is decided in order.

    Preference is lexicographic: the row closest to the middle row first, then within that
    row the block whose centre is closest to the middle seat. A quantity request gets
    adjacent seats in one row when any row has a long enough free run; otherwise it is
    split over the best free seats.
    """

    def __init__(self, layout: Layout, taken: Iterable[str]):
        self.layout = layout
        self._free = [bytearray(b"\x01" * layout.seats_per_row) for _ in range(layout.rows)]
        # Free seats per row: a row with fewer free seats than asked is skipped unscanned.
        self._row_free = [layout.seats_per_row] * layout.rows
        self.free_count = layout.total
        rows, seats_per_row, free = layout.rows, layout.seats_per_row, self._free
        for label in taken:
            # Inlined Layout.parse: a show's held seats are read again for every decided
            # batch, and a full large show holds thousands.
            if not isinstance(label, str) or not _LABEL_RE.fullmatch(label):
                continue
            row, seat = ord(label[0]) - 65, int(label[1:]) - 1
            if row < rows and seat < seats_per_row and free[row][seat]:
                free[row][seat] = 0
                self._row_free[row] -= 1
                self.free_count -= 1
        mid_row = (layout.rows - 1) / 2
        self._row_order = sorted(range(layout.rows), key=lambda r: (abs(r - mid_row), r))
        mid_seat = (layout.seats_per_row - 1) / 2
        self._seat_order = sorted(range(layout.seats_per_row), key=lambda s: (abs(s - mid_seat), s))
        self._mid_seat = mid_seat

    def take_exact(self, labels: Sequence[str]) -> bool:
        """Take all of these seats, or none of them if any is taken (all or nothing)."""
        free = [pos for pos in map(self.layout.parse, labels) if pos is not None and self._free[pos[0]][pos[1]]]
        if len(free) != len(labels):
            return False
        for row, seat in free:
            self._take(row, seat)
        return True

    def _take(self, row: int, seat: int) -> None:
        self._free[row][seat] = 0
        self._row_free[row] -= 1
        self.free_count -= 1

    def take_best(self, quantity: int) -> list[str] | None:
        """Take the best `quantity` free seats, or None (and take nothing) if too few are free."""
        if quantity > self.free_count:
            return None
        for row in self._row_order:
            if self._row_free[row] < quantity:
                continue
            start = self._best_block_in_row(row, quantity)
            if start is not None:
                seats = [(row, s) for s in range(start, start + quantity)]
                break
        else:
            seats = self._best_scattered(quantity)
        for row, seat in seats:
            self._take(row, seat)
        return [label_of(row, seat) for row, seat in seats]

    def _best_block_in_row(self, row: int, quantity: int) -> int | None:
        """Start index of the free block of `quantity` seats closest to the row's middle."""
        free = self._free[row]
        best_start, best_distance = None, None
        run_start = None
        for i in range(len(free) + 1):
            if i < len(free) and free[i]:
                if run_start is None:
                    run_start = i
                continue
            if run_start is not None and i - run_start >= quantity:
                # Within a free run [run_start, i) the best block is the one centred
                # nearest the middle seat, clamped to the run.
                ideal = round(self._mid_seat - (quantity - 1) / 2)
                start = min(max(ideal, run_start), i - quantity)
                distance = abs(start + (quantity - 1) / 2 - self._mid_seat)
                if best_distance is None or distance < best_distance:
                    best_start, best_distance = start, distance
            run_start = None
        return best_start

    def _best_scattered(self, quantity: int) -> list[tuple[int, int]]:
        chosen: list[tuple[int, int]] = []
        for row in self._row_order:
            if not self._row_free[row]:
                continue
            free = self._free[row]
            for seat in self._seat_order:
                if free[seat]:
                    chosen.append((row, seat))
                    if len(chosen) == quantity:
                        return chosen
        return chosen
