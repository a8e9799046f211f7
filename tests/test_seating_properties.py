"""Property tests of the allocator (hypothesis): for random layouts, seat categories, taken
seats and streams of requests, every answer keeps the rules of best available."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.allocation import SeatAllocator, orphans_left
from core.seating import (
    ACCESSIBLE,
    CATEGORIES,
    COMPANION,
    PREMIUM,
    STANDARD,
    Layout,
    SeatCategories,
    label_of,
)


@st.composite
def screens(draw):
    rows = draw(st.integers(1, 6))
    per_row = draw(st.integers(1, 12))
    layout = Layout(rows, per_row)
    labels = [label for label, _, _ in layout.seats()]
    letters = sorted({label[0] for label in labels})
    premium = draw(st.lists(st.sampled_from(letters), unique=True, max_size=rows))
    marked = draw(st.lists(st.sampled_from(labels), unique=True, max_size=min(8, len(labels))))
    split = draw(st.integers(0, len(marked)))
    categories = SeatCategories.of(premium, marked[:split], marked[split:])
    taken = draw(st.lists(st.sampled_from(labels), unique=True, max_size=len(labels)))
    requests = draw(
        st.lists(
            st.tuples(st.integers(1, 6), st.sampled_from([STANDARD, PREMIUM]), st.booleans()),
            min_size=1,
            max_size=25,
        )
    )
    # Accessible requests are rare, as in a box office.
    requests = [(q, cat, acc and i % 4 == 0) for i, (q, cat, acc) in enumerate(requests)]
    return layout, categories, taken, requests


def _runs(free: set, layout: Layout, cats: SeatCategories, category: str, row: int):
    """Maximal free runs [start, end) of `category` in a row."""
    runs, start = [], None
    for seat in range(layout.seats_per_row + 1):
        ok = seat < layout.seats_per_row and (
            label_of(row, seat) in free and cats.category_of(label_of(row, seat)) == category
        )
        if ok and start is None:
            start = seat
        elif not ok and start is not None:
            runs.append((start, seat))
            start = None
    return runs


def _blocks(free: set, layout: Layout, cats: SeatCategories, category: str, quantity: int):
    """Every contiguous block of `quantity` free seats of `category`: (row, run, block)."""
    for row in range(layout.rows):
        for run in _runs(free, layout, cats, category, row):
            for start in range(run[0], run[1] - quantity + 1):
                yield row, run, (start, start + quantity)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(screens())
def test_best_available_keeps_every_rule(screen):
    layout, cats, taken, requests = screen
    allocator = SeatAllocator(layout, taken, cats)
    free = {label for label, _, _ in layout.seats()} - set(taken)
    for quantity, category, accessible in requests:
        free_of = {c: {label for label in free if cats.category_of(label) == c} for c in CATEGORIES}
        blocks = list(_blocks(free, layout, cats, category, quantity))
        seats = allocator.take_best(quantity, category, accessible=accessible)

        if seats is None:
            # Refused only when the seats it may have are too few.
            if accessible:
                assert not free_of[ACCESSIBLE] or len(free_of[COMPANION] | free_of[category]) < quantity - 1
            else:
                assert len(free_of[category]) < quantity
            continue

        # No seat twice: every seat given was free, and only once.
        assert len(seats) == len(set(seats)) == quantity
        assert set(seats) <= free
        free -= set(seats)

        got = [cats.category_of(label) for label in seats]
        if accessible:
            # A wheelchair space, then companions, then the asked category; companions
            # only with a space.
            assert got.count(ACCESSIBLE) == 1
            assert set(got) <= {ACCESSIBLE, COMPANION, category}
            if category in got:
                assert len(free_of[COMPANION]) == got.count(COMPANION)
            continue

        # Categories obeyed: never a wheelchair or companion seat unless asked.
        assert set(got) == {category}

        rows = {label[0] for label in seats}
        numbers = sorted(int(label[1:]) - 1 for label in seats)
        adjacent = len(rows) == 1 and numbers == list(range(numbers[0], numbers[0] + quantity))
        # Adjacency preferred: split only when no row has a long enough run.
        assert adjacent or not blocks
        if adjacent:
            row = ord(seats[0][0]) - 65
            block = (numbers[0], numbers[0] + quantity)
            run = next(run for r, run, b in blocks if r == row and b == block)
            # No orphan when avoidable: a block that leaves a single seat alone is chosen
            # only when every block of that size would.
            if orphans_left(run, block):
                assert all(orphans_left(r, b) for _, r, b in blocks)

    # The allocator's own count agrees with the seats left.
    assert allocator.free_count == len(free)


@settings(max_examples=200, deadline=None)
@given(screens())
def test_exact_seats_are_all_or_nothing(screen):
    layout, cats, taken, requests = screen
    allocator = SeatAllocator(layout, taken, cats)
    labels = [label for label, _, _ in layout.seats()]
    held = set(taken)
    for i, (quantity, _, _) in enumerate(requests):
        wanted = labels[i % len(labels) : i % len(labels) + quantity]
        ok = allocator.take_exact(wanted)
        assert ok == (not set(wanted) & held)
        if ok:
            held |= set(wanted)
    assert allocator.free_count == len(labels) - len(held)
