"""Booking requests mixed like a box office's, for the race test, the fault tests and the
benchmark alike."""

import random

from core.pricing import TICKET_TYPES


def selling_fields(rng: random.Random, quantity: int, *, accessible: float, premium: float) -> dict:
    """The selling fields of a best-available request of `quantity` seats: a wheelchair
    request with probability `accessible`, else premium seats with probability `premium`,
    else standard; ticket types on about half (all adult otherwise)."""
    fields: dict = {}
    roll = rng.random()
    if roll < accessible:
        fields["accessible"] = True
    elif roll < accessible + premium:
        fields["seat_category"] = "premium"
    if rng.random() < 0.5:
        types = [rng.choice(TICKET_TYPES) for _ in range(quantity)]
        fields["tickets"] = {t: types.count(t) for t in TICKET_TYPES if t in types}
    return fields
