"""Prices (core/pricing.py) and booking references (core/references.py): pure functions."""

from decimal import Decimal

import pytest

from core import references
from core.pricing import PriceList, money, price_lines, ticket_sequence, total

PRICES = PriceList(
    base=Decimal("10.00"),
    explicit={("child", "standard"): Decimal("6.50"), ("senior", "premium"): Decimal("9.99")},
    premium_surcharge=Decimal("2.50"),
)


@pytest.mark.parametrize(
    ("ticket_type", "category", "amount"),
    [
        ("adult", "standard", "10.00"),  # the show's price
        ("adult", "premium", "12.50"),  # price + surcharge
        ("child", "standard", "6.50"),  # explicit
        ("child", "premium", "9.00"),  # the child's standard price + surcharge
        ("senior", "premium", "9.99"),  # explicit wins over the surcharge
        ("senior", "standard", "10.00"),  # no discount unless listed
        ("student", "accessible", "10.00"),  # a wheelchair space costs a standard seat
        ("child", "companion", "6.50"),  # and so does its companion seat, per ticket type
    ],
)
def test_fallback_rule(ticket_type, category, amount):
    assert PRICES.amount(ticket_type, category) == Decimal(amount)


def test_grid_lists_every_pair_once():
    grid = PRICES.grid()
    assert len(grid) == 16
    assert len({(p["ticket_type"], p["seat_category"]) for p in grid}) == 16


def test_money_is_decimal_cents_never_float():
    assert money("2.005") == Decimal("2.01")
    assert money(3) == Decimal("3.00")
    with pytest.raises(TypeError):
        money(2.5)


def test_lines_and_total():
    assert ticket_sequence(None, 2) == ["adult", "adult"]
    assert ticket_sequence({"child": 1, "adult": 2}, 3) == ["adult", "adult", "child"]
    with pytest.raises(ValueError, match="add up"):
        ticket_sequence({"adult": 1}, 2)
    lines = price_lines(PRICES, [("H1", "premium"), ("A5", "standard")], {"adult": 1, "child": 1})
    assert [(line.seat, line.ticket_type, line.amount) for line in lines] == [
        ("H1", "adult", Decimal("12.50")),
        ("A5", "child", Decimal("6.50")),
    ]
    assert total(lines) == Decimal("19.00")


def test_references_are_short_and_unambiguous():
    drawn = {references.new_reference() for _ in range(2000)}
    assert len(drawn) == 2000
    for reference in drawn:
        assert len(reference) == 8
        assert not set(reference) & set("0O1IL")
        assert references.PATTERN.match(reference)
    assert references.normalise("abcd-efgh") == "ABCDEFGH"
    assert references.normalise("ABCD EFG0") is None
