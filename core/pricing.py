"""Prices of a show: ticket types x seat categories, with the fallback rule. Pure, no database.

A show has one base `price`: an adult ticket on a standard seat. Staff may list explicit
prices for any (ticket type, seat category) pair; a pair that is not listed costs:

- standard seat: the explicit price of that ticket type on a standard seat if listed,
  otherwise the base price (a cinema that sells child tickets cheaper lists them; nothing is
  discounted by guesswork);
- premium seat: that ticket type's standard price plus BOOKING_PREMIUM_SURCHARGE;
- accessible and companion seats: that ticket type's standard price (a wheelchair user and
  their companion pay what a standard seat costs, never a surcharge).

Money is Decimal rounded half-up to cents, never float; one currency per deployment.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from core.seating import ACCESSIBLE, CATEGORIES, COMPANION, PREMIUM, STANDARD

ADULT, CHILD, SENIOR, STUDENT = "adult", "child", "senior", "student"
TICKET_TYPES = (ADULT, CHILD, SENIOR, STUDENT)
CENT = Decimal("0.01")


def money(value) -> Decimal:
    """A Decimal rounded half-up to cents (strings and ints are exact; floats are refused)."""
    if isinstance(value, float):
        raise TypeError("money is never a float")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PriceList:
    base: Decimal
    explicit: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    premium_surcharge: Decimal = Decimal("0")

    def amount(self, ticket_type: str, seat_category: str) -> Decimal:
        listed = self.explicit.get((ticket_type, seat_category))
        if listed is not None:
            return money(listed)
        standard = self.explicit.get((ticket_type, STANDARD), self.base)
        if seat_category == PREMIUM:
            return money(money(standard) + money(self.premium_surcharge))
        if seat_category in (STANDARD, ACCESSIBLE, COMPANION):
            return money(standard)
        raise ValueError(f"unknown seat category {seat_category!r}")

    def grid(self) -> list[dict]:
        """Every pair's price, explicit or by the fallback: what a client shows."""
        return [
            {"ticket_type": t, "seat_category": c, "amount": self.amount(t, c)}
            for t in TICKET_TYPES
            for c in CATEGORIES
        ]


def ticket_sequence(tickets: Mapping[str, int] | None, count: int) -> list[str]:
    """One ticket type per seat, in the fixed order adult, child, senior, student; no counts
    means every ticket is adult."""
    if not tickets:
        return [ADULT] * count
    sequence = [t for t in TICKET_TYPES for _ in range(tickets.get(t, 0))]
    if len(sequence) != count:
        raise ValueError("ticket counts do not add up to the seats")
    return sequence


@dataclass(frozen=True)
class Line:
    seat: str
    seat_category: str
    ticket_type: str
    amount: Decimal


def price_lines(prices: PriceList, seats: Sequence[tuple[str, str]], tickets: Mapping[str, int] | None) -> list[Line]:
    """The lines of a booking: `seats` as (label, category) in order, each with a ticket type."""
    types = ticket_sequence(tickets, len(seats))
    return [
        Line(label, category, t, prices.amount(t, category)) for (label, category), t in zip(seats, types, strict=True)
    ]


def total(lines: Iterable[Line]) -> Decimal:
    return money(sum((line.amount for line in lines), Decimal("0")))
