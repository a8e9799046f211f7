"""Best-available seat allocation: a pure function of a show's free seats and a request, no
database. Its preferences, in order: the asked category (wheelchair and companion seats only
for `accessible` requests), one row together, then no single seat left alone between taken
seats or at a row end when another block avoids it."""

from collections.abc import Iterable, Sequence

# The category codes are the seating module's own encoding, shared with the allocator only.
from core.seating import _ACC, _CODE, _COMP, _LABEL_RE, _STD, CATEGORIES, STANDARD, Layout, SeatCategories, label_of


def orphans_left(free_run: tuple[int, int], block: tuple[int, int]) -> bool:
    """Whether taking `block` [start, end) out of the free run [start, end) around it leaves
    a single seat alone at either side (between the block and a taken seat, another
    category or the row end)."""
    return block[0] - free_run[0] == 1 or free_run[1] - block[1] == 1


class SeatAllocator:
    """Free-seat state of one show, updated as a batch of bookings is decided in order.

    Best available works within one seat category and prefers, in this order:
    1. adjacent seats in one row, when any row has a long enough free run of the category;
    2. among those, a block that leaves no single seat alone (between the block and a taken
       seat, a seat of another category or the row end), when any block does;
    3. the row closest to the middle row, then the block whose centre is closest to the
       middle seat.
    When no row has room, the request is split over the best free seats of the category.
    Wheelchair spaces and companion seats are only ever given to `accessible` requests.
    """

    def __init__(self, layout: Layout, taken: Iterable[str], categories: SeatCategories | None = None):
        self.layout = layout
        self._free = [bytearray(b"\x01" * layout.seats_per_row) for _ in range(layout.rows)]
        self._cats = categories.category_map(layout) if categories is not None else None
        # Free seats per row and category: a row with fewer free seats than asked is skipped unscanned.
        if self._cats is None:
            self._row_free = [[layout.seats_per_row, 0, 0, 0] for _ in range(layout.rows)]
        else:
            self._row_free = [[row.count(code) for code in range(4)] for row in self._cats]
        self._cat_free = [sum(counts[code] for counts in self._row_free) for code in range(4)]
        self.free_count = layout.total
        rows, seats_per_row, free = layout.rows, layout.seats_per_row, self._free
        for label in taken:
            # Inlined Layout.parse: a show's held seats are read again for every decided
            # batch, and a full large show holds thousands.
            if not isinstance(label, str) or not _LABEL_RE.fullmatch(label):
                continue
            row, seat = ord(label[0]) - 65, int(label[1:]) - 1
            if row < rows and seat < seats_per_row and free[row][seat]:
                self._take(row, seat)
        mid_row = (layout.rows - 1) / 2
        self._row_order = sorted(range(layout.rows), key=lambda r: (abs(r - mid_row), r))
        mid_seat = (layout.seats_per_row - 1) / 2
        self._seat_order = sorted(range(layout.seats_per_row), key=lambda s: (abs(s - mid_seat), s))
        self._mid_seat = mid_seat

    def category_of(self, label: str) -> str:
        """The category of a seat of this layout."""
        if self._cats is None:
            return STANDARD
        position = self.layout.parse(label)
        assert position is not None, label  # noqa: S101  (a label this allocator handed out)
        row, seat = position
        return CATEGORIES[self._cats[row][seat]]

    def free_in(self, category: str) -> int:
        return self._cat_free[_CODE[category]]

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
        code = self._cats[row][seat] if self._cats is not None else _STD
        self._row_free[row][code] -= 1
        self._cat_free[code] -= 1
        self.free_count -= 1

    def release(self, labels: Sequence[str]) -> None:
        """Give back seats taken by this allocator (a booking refused after its seats were chosen)."""
        for label in labels:
            position = self.layout.parse(label)
            if position is None:
                continue
            row, seat = position
            if not self._free[row][seat]:
                self._free[row][seat] = 1
                code = self._cats[row][seat] if self._cats is not None else _STD
                self._row_free[row][code] += 1
                self._cat_free[code] += 1
                self.free_count += 1

    def take_best(self, quantity: int, category: str = STANDARD, *, accessible: bool = False) -> list[str] | None:
        """Take the best `quantity` free seats of `category`, or None (taking nothing) if too
        few are free. With `accessible`, the booking gets a wheelchair space first, then
        companion seats, then seats of `category`, each as close to the space as possible."""
        if accessible:
            seats = self._best_accessible(quantity, _CODE[category])
        else:
            seats = self._best_of(quantity, _CODE[category])
        if seats is None:
            return None
        for row, seat in seats:
            self._take(row, seat)
        return [label_of(row, seat) for row, seat in seats]

    def _best_of(self, quantity: int, code: int) -> list[tuple[int, int]] | None:
        if code in (_ACC, _COMP) or quantity > self._cat_free[code]:
            return None
        fallback = None
        for row in self._row_order:
            if self._row_free[row][code] < quantity:
                continue
            found = self._best_block_in_row(row, quantity, code)
            if found is None:
                continue
            start, orphan = found
            if not orphan:
                return [(row, s) for s in range(start, start + quantity)]
            if fallback is None:
                fallback = [(row, s) for s in range(start, start + quantity)]
        return fallback if fallback is not None else self._best_scattered(quantity, code)

    def _runs(self, row: int, code: int):
        """The maximal free runs [start, end) of seats of `code` in a row."""
        free = self._free[row]
        cats = self._cats[row] if self._cats is not None else None
        run_start = None
        n = len(free)
        for i in range(n + 1):
            if i < n and free[i] and (cats is None or cats[i] == code):
                if run_start is None:
                    run_start = i
                continue
            if run_start is not None:
                yield run_start, i
            run_start = None

    def _best_block_in_row(self, row: int, quantity: int, code: int) -> tuple[int, bool] | None:
        """(start, leaves an orphan) of the best free block of `quantity` seats in a row:
        one that leaves no single seat alone if any does, then the one centred nearest the
        middle seat."""
        best = None
        ideal = round(self._mid_seat - (quantity - 1) / 2)
        half = (quantity - 1) / 2
        for run_start, run_end in self._runs(row, code):
            last = run_end - quantity
            if last < run_start:
                continue
            # The block nearest the middle, clamped to the run; if it would leave a single
            # seat at either side, the nearest start that does not (at most two starts of a
            # run are bad: one seat in from either end).
            clamped = min(max(ideal, run_start), last)
            start, orphan = clamped, True
            for delta in (0, -1, 1, -2, 2):
                candidate = clamped + delta
                if run_start <= candidate <= last and candidate - run_start != 1 and last - candidate != 1:
                    start, orphan = candidate, False
                    break
            key = (orphan, abs(start + half - self._mid_seat))
            if best is None or key < best[0]:
                best = (key, start)
        return None if best is None else (best[1], best[0][0])

    def _best_scattered(self, quantity: int, code: int) -> list[tuple[int, int]]:
        chosen: list[tuple[int, int]] = []
        for row in self._row_order:
            if not self._row_free[row][code]:
                continue
            free = self._free[row]
            cats = self._cats[row] if self._cats is not None else None
            for seat in self._seat_order:
                if free[seat] and (cats is None or cats[seat] == code):
                    chosen.append((row, seat))
                    if len(chosen) == quantity:
                        return chosen
        return chosen

    def _best_accessible(self, quantity: int, code: int) -> list[tuple[int, int]] | None:
        """A wheelchair space, then companion seats, then seats of `code`, nearest first.
        Among the free spaces, the one whose group sits closest together wins (ties: the
        better row, then the better seat)."""
        if self._cats is None or not self._cat_free[_ACC]:
            return None
        if code in (_ACC, _COMP):
            code = _STD
        if quantity - 1 > self._cat_free[_COMP] + self._cat_free[code]:
            return None
        row_rank = {row: rank for rank, row in enumerate(self._row_order)}
        seat_rank = {seat: rank for rank, seat in enumerate(self._seat_order)}
        best = None
        for row in self._row_order:
            if not self._row_free[row][_ACC]:
                continue
            for seat in self._seat_order:
                if not (self._free[row][seat] and self._cats[row][seat] == _ACC):
                    continue
                group = [(row, seat)]
                group += self._nearest(row, seat, _COMP, quantity - 1, group)
                if len(group) < quantity:
                    group += self._nearest(row, seat, code, quantity - len(group), group)
                if len(group) < quantity:
                    continue
                spread = sum(abs(r - row) * 1000 + abs(s - seat) for r, s in group)
                key = (spread, row_rank[row], seat_rank[seat])
                if best is None or key < best[0]:
                    best = (key, group)
        return None if best is None else best[1]

    def _nearest(self, row: int, seat: int, code: int, count: int, exclude) -> list[tuple[int, int]]:
        """Up to `count` free seats of `code` nearest (row, seat): the same row first."""
        if count <= 0:
            return []
        found: list[tuple[int, int]] = []
        rows = sorted(range(self.layout.rows), key=lambda r: (abs(r - row), r))
        seats = sorted(range(self.layout.seats_per_row), key=lambda s: (abs(s - seat), s))
        for r in rows:
            if not self._row_free[r][code]:
                continue
            free, cats = self._free[r], self._cats[r] if self._cats is not None else None
            for s in seats:
                if free[s] and (cats[s] if cats is not None else _STD) == code and (r, s) not in exclude:
                    found.append((r, s))
                    if len(found) == count:
                        return found
        return found
