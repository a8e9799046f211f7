"""Seat labels and seat categories: pure functions over a screen layout, no database (the
allocator that picks seats from them is core/allocation.py).

A screen has `rows` rows lettered A.. and `seats_per_row` seats numbered from 1, so its
seats are labelled `A1` .. `J12`. Labels are strict: `A01`, `a1` or ` A1` are not seats,
so no spelling can alias another seat.

Every seat has one category: `standard`, `premium` (whole rows), `accessible` (wheelchair
spaces) or `companion` (seats sold only with a wheelchair space). A screen that marks
nothing is all standard.
"""

import re
import string
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


STANDARD, PREMIUM, ACCESSIBLE, COMPANION = "standard", "premium", "accessible", "companion"
CATEGORIES = (STANDARD, PREMIUM, ACCESSIBLE, COMPANION)
# One byte per seat in the allocator's maps.
_CODE = {name: code for code, name in enumerate(CATEGORIES)}
_STD, _PREM, _ACC, _COMP = range(4)


@dataclass(frozen=True, slots=True)
class SeatCategories:
    """Which seats of a screen are not standard. Marks are validated by `problems()`."""

    premium_rows: tuple[str, ...] = ()
    accessible_seats: tuple[str, ...] = ()
    companion_seats: tuple[str, ...] = ()

    @classmethod
    def of(cls, premium_rows=(), accessible_seats=(), companion_seats=()) -> "SeatCategories":
        return cls(tuple(premium_rows or ()), tuple(accessible_seats or ()), tuple(companion_seats or ()))

    @property
    def all_standard(self) -> bool:
        return not (self.premium_rows or self.accessible_seats or self.companion_seats)

    def problems(self, layout: Layout) -> dict[str, list[str]]:
        """Field errors of these marks on `layout` (empty when valid): unknown rows or seats,
        duplicates, and a seat marked both accessible and companion."""
        errors: dict[str, list[str]] = {}
        letters = ROW_LETTERS[: layout.rows]
        bad_rows = [row for row in self.premium_rows if not isinstance(row, str) or len(row) != 1 or row not in letters]
        if bad_rows:
            errors["premium_rows"] = [f"Not a row of this screen: {', '.join(map(str, bad_rows))}."]
        elif len(set(self.premium_rows)) != len(self.premium_rows):
            errors["premium_rows"] = ["A row is listed more than once."]
        for field, labels in (("accessible_seats", self.accessible_seats), ("companion_seats", self.companion_seats)):
            unknown = [str(label) for label in labels if layout.parse(label) is None]
            if unknown:
                errors[field] = [f"Not a seat of this screen: {', '.join(unknown)}."]
            elif len(set(labels)) != len(labels):
                errors[field] = ["A seat is listed more than once."]
        both = sorted(set(self.accessible_seats) & set(self.companion_seats))
        if both and "companion_seats" not in errors:
            errors["companion_seats"] = [f"Already an accessible seat: {', '.join(both)}."]
        return errors

    def category_map(self, layout: Layout) -> list[bytearray] | None:
        """One category code per seat, row by row; None when every seat is standard.
        Accessible and companion marks win over a premium row (a wheelchair space sells as one)."""
        if self.all_standard:
            return None
        cats = [bytearray(layout.seats_per_row) for _ in range(layout.rows)]
        for letter in self.premium_rows:
            row = ord(letter) - 65
            if 0 <= row < layout.rows:
                cats[row][:] = bytes([_PREM]) * layout.seats_per_row
        for labels, code in ((self.accessible_seats, _ACC), (self.companion_seats, _COMP)):
            for label in labels:
                position = layout.parse(label)
                if position is not None:
                    cats[position[0]][position[1]] = code
        return cats

    def category_of(self, label: str) -> str:
        if label in self.accessible_seats:
            return ACCESSIBLE
        if label in self.companion_seats:
            return COMPANION
        if label[:1] in self.premium_rows:
            return PREMIUM
        return STANDARD
