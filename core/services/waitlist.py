"""The waiting list of a sold-out show (CONTRACT "Holds, payment, tickets, admission").

A user joins a show's list for a number of seats when too few are free. Seats freed later
(a cancel, an expired hold or offer) are offered to the waiting entries first come, first
served, in the very transaction that freed them: each entry that fits, in order, gets a
held booking (`offer`) with its own deadline (WAITLIST_OFFER_MINUTES), confirmed by paying
(a paying show) or by booking_confirm_offer (a free one). An offer not taken in time
expires like any hold (core/services/holds.py), and that expiry offers its seats to the
next entry. Offers never take more seats than the transaction freed: seats that were
already free stay with the booking queue, whose pending bookings asked for them first.

Lock order (core/services/decisions.py): the show row, then bookings, then entries.
Joining and leaving lock the show row too, so an entry is committed either before an offer
looks at the list (and is offered) or after it (and sees the seats the offer left):
never a join that waits while seats it could have had are free. The id order of a show's
entries is therefore the order in which they were committed: their place in the queue.
"""

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core import metrics
from core.allocation import SeatAllocator
from core.exceptions import Conflict, NotFound, ValidationFailed
from core.models import BookedSeat, Booking, Show, WaitlistEntry
from core.seating import STANDARD
from core.selectors import bookings_visible_to, show_screen_and_held, waitlist_entry_get
from core.services import partner_events, selling
from core.services.decisions import Status, locked_shows, win

logger = logging.getLogger("core.bookings")

Waiting = WaitlistEntry.Status


def _locked_show(show_id: int) -> Show:
    show = locked_shows().filter(pk=show_id).first()
    if show is None:
        raise NotFound("Show not found.")
    return show


@transaction.atomic
def waitlist_join(*, user_id: int, show_id: int, quantity: int) -> WaitlistEntry:
    """Put `user_id` on the waiting list of a show for `quantity` standard seats: a new
    `waiting` entry at the end of the queue (returned with its position).

    Raises NotFound (unknown show), ValidationFailed (quantity out of 1..BOOKING_MAX_SEATS,
    the show cancelled or started), Conflict `seats_available` (enough standard seats are
    free: book them instead), `already_waiting` (the user has a waiting entry for the show;
    details.id names it) or `limit_exceeded` (the seats would take the user past
    BOOKING_MAX_SEATS_PER_USER_PER_SHOW, so no offer could ever be made).
    """
    if not 1 <= quantity <= settings.BOOKING_MAX_SEATS:
        raise ValidationFailed(
            "The quantity is out of range.",
            details={"quantity": [f"Ask for between 1 and {settings.BOOKING_MAX_SEATS} seats."]},
        )
    # The show's lock first: the free seats read below stay as they are until this commits.
    show = _locked_show(show_id)
    if show.status == Show.Status.CANCELLED:
        raise ValidationFailed("The show was cancelled.", details={"show": ["This show was cancelled."]})
    if show.starts_at <= timezone.now():
        raise ValidationFailed("The show has started.", details={"show": ["This show has already started."]})
    existing = WaitlistEntry.objects.filter(user_id=user_id, show_id=show_id, status=Waiting.WAITING).first()
    if existing is not None:
        raise Conflict(
            "You are already on this show's waiting list.", code="already_waiting", details={"id": existing.pk}
        )
    layout, taken, categories, _ = show_screen_and_held(show_id=show_id)
    free = SeatAllocator(layout, taken, categories).free_in(STANDARD)
    if free >= quantity:
        raise Conflict(
            f"{free} seats are free: book them instead of waiting.", code="seats_available", details={"free": free}
        )
    limit = settings.BOOKING_MAX_SEATS_PER_USER_PER_SHOW
    if selling.live_seats(show_id=show_id, user_id=user_id) + quantity > limit:
        raise Conflict(
            f"You would hold more than {limit} seats of this show.", code="limit_exceeded", details={"limit": limit}
        )
    try:
        with transaction.atomic():
            entry = WaitlistEntry.objects.create(user_id=user_id, show_id=show_id, quantity=quantity)
    except IntegrityError as exc:
        # Only the unique waiting entry per user and show can refuse it, and the show's lock
        # makes even that unreachable; kept as the last line.
        raise Conflict("You are already on this show's waiting list.", code="already_waiting") from exc
    logger.info("waiting list joined", extra={"entry_id": entry.pk, "show_id": show_id, "quantity": quantity})
    return waitlist_entry_get(entry_id=entry.pk, user_id=user_id)


@transaction.atomic
def waitlist_leave(*, user_id: int, entry_id: int) -> None:
    """Leave a waiting list: a `waiting` entry of `user_id` becomes `left`. An entry that is
    already left or closed stays as it is.

    Raises NotFound (no such entry of this user) or Conflict `already_offered` (an offer was
    made: decline it by cancelling the offered booking; details.booking names it).
    """
    show_id = WaitlistEntry.objects.filter(pk=entry_id, user_id=user_id).values_list("show_id", flat=True).first()
    if show_id is None:
        raise NotFound("Waiting-list entry not found.")
    _locked_show(show_id)
    entry = WaitlistEntry.objects.select_for_update().get(pk=entry_id)
    if entry.status == Waiting.OFFERED:
        raise Conflict(
            "An offer was made for this entry: cancel the offered booking to decline it.",
            code="already_offered",
            details={"booking": str(entry.booking_id)},
        )
    if entry.status != Waiting.WAITING:
        return
    entry.status, entry.ended_at = Waiting.LEFT, timezone.now()
    entry.save(update_fields=["status", "ended_at"])
    logger.info("waiting list left", extra={"entry_id": entry.pk, "show_id": show_id})


def waitlist_offer_freed(*, show: Show, freed: int, now: datetime) -> list[Booking]:
    """Offer `freed` seats just freed in `show` to its waiting list, first come first served.

    Must run inside the transaction that freed them, holding the show's lock
    (core.services.decisions.locked_shows), after their BookedSeat rows are gone. Each
    waiting entry in order that fits gets a held booking (`offer`, held until now +
    WAITLIST_OFFER_MINUTES, priced like a decided booking of adult tickets) and becomes
    `offered`; an entry that does not fit is passed over and keeps its place: one asking
    for more seats than remain, or whose user would go past
    BOOKING_MAX_SEATS_PER_USER_PER_SHOW or BOOKING_MAX_PENDING_PER_USER. At most `freed`
    seats are offered. Returns the offered bookings.
    """
    if freed <= 0 or show.status == Show.Status.CANCELLED or show.starts_at <= now:
        return []
    entries = list(
        WaitlistEntry.objects.select_for_update(of=("self",))
        .filter(show_id=show.pk, status=Waiting.WAITING, quantity__lte=freed)
        .order_by("pk")
    )
    if not entries:
        return []
    layout, taken, categories, prices = show_screen_and_held(show_id=show.pk, with_prices=True)
    show.explicit_prices = prices  # type: ignore[attr-defined]  # read by Show.price_list
    candidates = [_offer_for(entry, now=now) for entry in entries]
    seller = selling.Seller(show=show, bookings=candidates, layout=layout, categories=categories)
    allocator = seller.allocator(taken)
    # Each user's open bookings, counted under their pending-limit lock: an offer is held.
    open_bookings = selling.open_counts_locked([entry.user_id for entry in entries])
    hold = timedelta(minutes=settings.WAITLIST_OFFER_MINUTES)
    offered: list[tuple[WaitlistEntry, Booking]] = []
    budget = freed
    for entry, booking in zip(entries, candidates, strict=True):
        if entry.quantity > budget or open_bookings.get(entry.user_id, 0) >= settings.BOOKING_MAX_PENDING_PER_USER:
            continue
        labels, _ = seller.take(booking, allocator)
        if labels is None:
            continue
        win(booking, show=show, labels=labels, now=now, hold=hold)
        seller.sell(booking, labels, allocator)
        budget -= len(labels)
        open_bookings[entry.user_id] = open_bookings.get(entry.user_id, 0) + 1
        offered.append((entry, booking))
        if budget == 0:
            break
    if offered:
        _write_offers(show_id=show.pk, offered=offered, now=now)
    return [booking for _, booking in offered]


def _offer_for(entry: WaitlistEntry, *, now: datetime) -> Booking:
    """The booking an entry would be offered: a request for `quantity` standard seats."""
    return Booking(
        id=uuid.uuid4(),
        user_id=entry.user_id,
        show_id=entry.show_id,
        quantity=entry.quantity,
        seats=[],
        seat_category=STANDARD,
        offer=True,
        created_at=now,
    )


def _write_offers(*, show_id: int, offered: list[tuple[WaitlistEntry, Booking]], now: datetime) -> None:
    bookings = [booking for _, booking in offered]

    def write() -> None:
        Booking.objects.bulk_create(bookings)
        # The unique (show, seat) constraint is the last line, as for a decision.
        BookedSeat.objects.bulk_create(
            [BookedSeat(show_id=show_id, seat_label=label, booking_id=b.pk) for b in bookings for label in b.seats]
        )
        with connection.cursor() as cursor:
            selling.write_sales(cursor, bookings)

    selling.with_unique_references(write, bookings)
    for entry, booking in offered:
        entry.status, entry.booking, entry.offered_at = Waiting.OFFERED, booking, now
    WaitlistEntry.objects.bulk_update([entry for entry, _ in offered], ["status", "booking", "offered_at"])
    transaction.on_commit(lambda: metrics.waitlist_offered(len(offered)))
    for entry, booking in offered:
        logger.info(
            "waiting list offer",
            extra={"entry_id": entry.pk, "booking_id": str(booking.pk), "show_id": show_id, "seats": booking.seats},
        )


def waitlist_close_show(*, show_id: int, now: datetime) -> int:
    """Close the waiting entries of a show being cancelled (inside that transaction, under
    its lock): no offer will come. Returns how many closed."""
    return WaitlistEntry.objects.filter(show_id=show_id, status=Waiting.WAITING).update(
        status=Waiting.CLOSED, ended_at=now
    )


@transaction.atomic
def booking_confirm_offer(*, booking_id, user) -> Booking:
    """Take a waiting-list offer of a show without payment: held -> confirmed, its seats
    kept. Confirming a confirmed offer returns it unchanged.

    Raises NotFound (not visible to `user`), Conflict `not_an_offer` (a booking the decider
    made), `payment_required` (a paying show's offer is confirmed by paying it),
    `hold_expired` (past its deadline, or expired already), `booking_cancelled`, or
    `show_started`. Locks the show row first, then the booking (the lock order), so that a
    confirm and the expiry of the same offer are decided by whichever commits first.
    """
    visible = bookings_visible_to(user=user).filter(pk=booking_id)
    show = locked_shows().filter(pk__in=visible.values("show_id")).first()
    booking = visible.select_for_update(of=("self",)).first() if show is not None else None
    if booking is None or show is None:
        raise NotFound("Booking not found.")
    booking.show = show
    now = timezone.now()
    if not booking.offer:
        raise Conflict("Only a waiting-list offer is confirmed this way.", code="not_an_offer")
    if show.payment_required:
        raise Conflict("This show takes payment: pay the offer to confirm it.", code="payment_required")
    if booking.status == Status.CONFIRMED:
        return booking
    if booking.status == Status.CANCELLED:
        raise Conflict("The offer was cancelled.", code="booking_cancelled")
    if booking.status == Status.EXPIRED or (booking.hold_expires_at is not None and booking.hold_expires_at <= now):
        raise Conflict("The offer expired; its seats went to the next in line.", code="hold_expired")
    if show.starts_at <= now:
        raise Conflict("The show has already started.", code="show_started")
    booking.status, booking.confirmed_at = Status.CONFIRMED, now
    booking.save(update_fields=["status", "confirmed_at"])
    partner_events.booking_events_record(bookings=[booking], event=partner_events.Event.CONFIRMED)
    logger.info("waiting list offer confirmed", extra={"booking_id": str(booking.pk), "show_id": show.pk})
    return booking
