"""Holds: the deadline of a paying show's won booking.

A held booking keeps its seats until `hold_expires_at`; then it becomes `expired` and its
seats are free. The deadline is a PostgreSQL column, so the job that acts on it may run
anywhere, late or twice: it only ever expires what is still held and past its deadline,
under the lock order of core/services/decisions.py (the show row, then the bookings). A
payment, a cancel or an expiry of one booking therefore queue on its show's row, and
whichever commits first wins; the others find the booking no longer `held`.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core import metrics
from core.models import BookedSeat, Booking
from core.services import partner_events
from core.services.decisions import Status, locked_shows
from core.services.waitlist import waitlist_offer_freed

logger = logging.getLogger("core.bookings")


def holds_expire_due(*, now: datetime | None = None) -> int:
    """Expire every held booking past its deadline, one show per transaction (so that a
    show whose decider holds its row delays only its own holds). Returns how many expired."""
    now = now or timezone.now()
    show_ids = (
        Booking.objects.filter(status=Status.HELD, hold_expires_at__lte=now)
        .order_by("show_id")
        .values_list("show_id", flat=True)
        .distinct()
    )
    return sum(len(holds_expire_show(show_id=show_id, now=now)) for show_id in list(show_ids))


@transaction.atomic
def holds_expire_show(*, show_id: int, now: datetime) -> list[Booking]:
    """Expire the held bookings of one show whose deadline is at or before `now`: held ->
    expired, their seats freed in this transaction and offered to the show's waiting list
    (core/services/waitlist.py). Returns the bookings expired."""
    show = locked_shows().filter(pk=show_id).first()
    if show is None:
        return []
    bookings = list(
        Booking.objects.select_for_update(of=("self",)).filter(
            show_id=show_id, status=Status.HELD, hold_expires_at__lte=now
        )
    )
    if not bookings:
        return []
    ids = [booking.pk for booking in bookings]
    freed, _ = BookedSeat.objects.filter(booking_id__in=ids).delete()
    Booking.objects.filter(pk__in=ids, status=Status.HELD).update(status=Status.EXPIRED)
    partner_events.booking_events_record(bookings=ids, event=partner_events.Event.EXPIRED)
    for booking in bookings:
        booking.status = Status.EXPIRED
    # The freed seats go to the waiting list first; an expired offer passes to the next entry.
    waitlist_offer_freed(show=show, freed=freed, now=timezone.now())
    transaction.on_commit(lambda: metrics.bookings_expired(len(ids)))
    logger.info("holds expired", extra={"show_id": show_id, "count": len(ids)})
    return bookings
