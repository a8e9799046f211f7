"""Ending bookings before they are decided or used: a user's cancel, and the expiry of
bookings still pending when their show starts. Both follow the lock order of
core/services/decisions.py: the show row first, then its bookings.
"""

import logging

from django.db import transaction
from django.utils import timezone

from core import metrics
from core.exceptions import Conflict, NotFound
from core.models import BookedSeat, Booking, BookingLine, Show
from core.selectors import bookings_visible_to
from core.services import partner_events
from core.services.decisions import Reason, Status, locked_shows
from core.services.payments import payment_refund_for_cancel
from core.services.waitlist import waitlist_offer_freed

logger = logging.getLogger("core.bookings")


@transaction.atomic
def booking_cancel(*, booking_id, user) -> Booking:
    """Cancel a booking of `user` (staff: anyone's) and free its seats in this transaction.

    pending, held or confirmed -> cancelled; cancelled stays as it is; a paid booking's
    charge is refunded (core.services.payments), and the seats it held are offered to the
    show's waiting list in this transaction (core/services/waitlist.py). Raises NotFound
    when the booking is not visible to the user, Conflict when it failed or expired, its show
    has started, one of its tickets was admitted (`ticket_admitted`), or
    (`refund_window_closed`) when it is paid and its show starts within REFUND_CUTOFF_MINUTES.
    The booking's show is locked before the booking (the lock order), so a cancel queues
    behind a decision or a show's cancellation of the same show instead of deadlocking it.
    """
    visible = bookings_visible_to(user=user).filter(pk=booking_id)
    show = locked_shows().filter(pk__in=visible.values("show_id")).first()
    booking = visible.select_for_update(of=("self",)).first() if show is not None else None
    if booking is None or show is None:
        raise NotFound("Booking not found.")
    booking.show = show
    if booking.status == Status.CANCELLED:
        return booking
    if booking.status == Status.FAILED:
        raise Conflict("A failed booking cannot be cancelled.", code="booking_failed")
    if booking.status == Status.EXPIRED:
        raise Conflict("An expired booking cannot be cancelled.", code="booking_expired")
    if show.starts_at <= timezone.now():
        raise Conflict("The show has already started.", code="show_started")
    # Someone is inside on one of its tickets: a cancel (and its refund) would take back a
    # seat already used. Read under the booking's lock, which a check-in's share lock
    # conflicts with (core/services/checkins.py), so no admission slips in after this look.
    if BookingLine.objects.filter(booking_id=booking.pk, admitted_at__isnull=False).exists():
        raise Conflict("A ticket of this booking was admitted already.", code="ticket_admitted")
    now = timezone.now()
    # A paid booking's charge is refunded (after this commits), or the cancel refused past the
    # refund cutoff.
    refund = payment_refund_for_cancel(booking=booking, show=show, now=now)
    # Deleting the held seats in the same transaction frees them for the very next decision,
    # after the waiting list (CONTRACT: freed seats are offered to it first).
    freed, _ = BookedSeat.objects.filter(booking_id=booking.pk).delete()
    booking.status = Status.CANCELLED
    booking.cancelled_at = now
    booking.save(update_fields=["status", "cancelled_at"])
    partner_events.booking_events_record(bookings=[booking], event=partner_events.Event.CANCELLED)
    if refund is not None:
        partner_events.booking_events_record(bookings=[booking], event=partner_events.Event.REFUNDED)
    waitlist_offer_freed(show=show, freed=freed, now=now)
    transaction.on_commit(lambda: metrics.bookings_cancelled(1, by="user"))
    logger.info("booking cancelled", extra={"booking_id": str(booking.id), "show_id": booking.show_id})
    return booking


@transaction.atomic
def bookings_expire_started() -> int:
    """Fail every booking still pending for a show that has started (`show_started`).

    The started shows with pending bookings are locked first, in id order (the lock order),
    skipping those locked right now: their decider (or their cancellation) settles those
    bookings itself, and the next sweep looks again. Then one UPDATE whose `status =
    'pending'` condition is on the updated rows, so that it cannot overwrite a booking that
    a decision confirmed meanwhile.
    """
    now = timezone.now()
    show_ids = list(
        Show.objects.select_for_update(no_key=True, of=("self",), skip_locked=True)
        .filter(starts_at__lte=now, pk__in=Booking.objects.filter(status=Status.PENDING).values("show_id"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not show_ids:
        return 0
    # No join in this update: Django would turn one into `WHERE id IN (subquery)`.
    expired = Booking.objects.filter(show_id__in=show_ids, status=Status.PENDING).update(
        status=Status.FAILED, failure_reason=Reason.SHOW_STARTED, decided_at=now
    )
    if expired:
        # The rows this update set, named by what it set (the show rows are locked).
        partner_events.booking_events_record(
            bookings=Booking.objects.filter(
                show_id__in=show_ids, status=Status.FAILED, failure_reason=Reason.SHOW_STARTED, decided_at=now
            ),
            event=partner_events.Event.FAILED,
        )
        transaction.on_commit(lambda: metrics.bookings_failed(expired, reason=Reason.SHOW_STARTED))
        logger.info("pending bookings of started shows failed", extra={"count": expired})
    return expired
