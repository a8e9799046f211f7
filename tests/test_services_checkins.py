"""Admission at the door (core/services/checkins.py): each ticket admits once, void tickets
never; a cancel and a check-in of one booking are decided by whichever commits first, proved
with two database connections (tests/locking.py)."""

import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core import tickets
from core.exceptions import Conflict, NotFound
from core.models import BookedSeat, Booking, BookingLine
from core.services.cancellation import booking_cancel
from core.services.checkins import ticket_admit
from core.services.decisions import booking_decide_batch
from core.services.holds import holds_expire_due
from tests.factories import ShowFactory, UserFactory
from tests.locking import Background, breakpoint_on, pending_booking, wait_until_waiting

ROW_LOCK_WAITS = {"transactionid", "tuple"}


def confirmed_booking(user=None, *, seats=("A1", "A2"), show=None) -> Booking:
    booking = pending_booking(user or UserFactory(), show or ShowFactory(), seats=list(seats))
    booking_decide_batch(show_id=booking.show_id)
    booking.refresh_from_db()
    assert booking.status == "confirmed"
    return booking


def codes_of(booking) -> list[str]:
    return [tickets.ticket_code(line.ticket_id) for line in booking.lines.order_by("id")]


@pytest.mark.django_db
def test_a_ticket_admits_once_and_the_second_scan_says_when_the_first_was():
    booking = confirmed_booking()
    first_code, second_code = codes_of(booking)
    admission = ticket_admit(code=first_code)
    assert (admission.show_id, admission.seat) == (booking.show_id, "A1")
    assert abs(admission.admitted_at - timezone.now()) < timedelta(minutes=1)
    with pytest.raises(Conflict) as again:
        ticket_admit(code=first_code)
    assert again.value.code == "already_admitted"
    assert again.value.details == {"admitted_at": admission.admitted_at.isoformat().replace("+00:00", "Z")}
    # The booking's other ticket is its own: it still admits.
    assert ticket_admit(code=second_code).seat == "A2"
    assert BookingLine.objects.filter(booking=booking, admitted_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_tickets_of_a_cancelled_booking_are_void():
    user = UserFactory()
    booking = confirmed_booking(user)
    booking_cancel(booking_id=booking.pk, user=user)
    with pytest.raises(Conflict) as void:
        ticket_admit(code=codes_of(booking)[0])
    assert (void.value.code, void.value.details) == ("ticket_void", {"booking_status": "cancelled"})
    assert not BookingLine.objects.filter(booking=booking, admitted_at__isnull=False).exists()


@pytest.mark.django_db
def test_tickets_of_held_and_expired_bookings_are_void():
    show = ShowFactory(payment_required=True, price=Decimal("9.00"))
    held = pending_booking(UserFactory(), show, seats=["A1"])
    booking_decide_batch(show_id=show.pk)
    held.refresh_from_db()
    assert held.status == "held"
    code = codes_of(held)[0]
    with pytest.raises(Conflict) as unpaid:
        ticket_admit(code=code)
    assert (unpaid.value.code, unpaid.value.details) == ("ticket_void", {"booking_status": "held"})
    Booking.objects.filter(pk=held.pk).update(hold_expires_at=timezone.now() - timedelta(seconds=1))
    holds_expire_due()
    with pytest.raises(Conflict) as expired:
        ticket_admit(code=code)
    assert expired.value.details == {"booking_status": "expired"}


@pytest.mark.django_db
def test_a_forged_code_is_refused_before_any_query_and_an_unknown_one_after_one():
    with CaptureQueriesContext(connection) as queries, pytest.raises(NotFound) as forged:
        ticket_admit(code="not-a-ticket")
    assert forged.value.code == "ticket_not_found"
    assert len(queries) == 0
    # Signed by us but for no ticket (a purged booking): the same answer.
    with pytest.raises(NotFound) as unknown:
        ticket_admit(code=tickets.ticket_code(uuid.uuid4()))
    assert unknown.value.code == "ticket_not_found"


@pytest.mark.django_db
def test_a_booking_with_an_admitted_ticket_cannot_be_cancelled():
    user = UserFactory()
    booking = confirmed_booking(user)
    ticket_admit(code=codes_of(booking)[1])
    with pytest.raises(Conflict) as refused:
        booking_cancel(booking_id=booking.pk, user=user)
    assert refused.value.code == "ticket_admitted"
    booking.refresh_from_db()
    assert booking.status == "confirmed"
    assert BookedSeat.objects.filter(booking=booking).count() == 2


# ---- Races, with two connections --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_check_in_that_commits_first_makes_the_cancel_refuse():
    user = UserFactory()
    booking = confirmed_booking(user)
    code = codes_of(booking)[0]
    with breakpoint_on("core_bookingline", "UPDATE", "NEW.admitted_at IS NOT NULL") as release:
        checkin = Background(lambda: ticket_admit(code=code))
        # Paused inside its update: the booking row is share-locked already.
        assert wait_until_waiting(checkin, on="advisory")
        cancel = Background(lambda: booking_cancel(booking_id=booking.pk, user=user))
        assert wait_until_waiting(cancel) in ROW_LOCK_WAITS  # on the booking row, behind the check-in
        release()
        assert checkin.join().seat == "A1"
        with pytest.raises(Conflict) as refused:
            cancel.join()
    assert refused.value.code == "ticket_admitted"
    booking.refresh_from_db()
    assert booking.status == "confirmed"
    assert BookedSeat.objects.filter(booking=booking).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_cancel_that_commits_first_voids_the_waiting_check_in():
    user = UserFactory()
    booking = confirmed_booking(user)
    code = codes_of(booking)[0]
    with breakpoint_on("core_booking", "UPDATE", "NEW.status = 'cancelled'") as release:
        cancel = Background(lambda: booking_cancel(booking_id=booking.pk, user=user))
        # Paused while holding the show row and the booking row FOR UPDATE.
        assert wait_until_waiting(cancel, on="advisory")
        checkin = Background(lambda: ticket_admit(code=code))
        assert wait_until_waiting(checkin) in ROW_LOCK_WAITS  # its share lock waits for the cancel
        release()
        assert cancel.join().status == "cancelled"
        with pytest.raises(Conflict) as void:
            checkin.join()
    assert void.value.code == "ticket_void"
    assert not BookingLine.objects.filter(booking=booking, admitted_at__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_a_second_scan_waiting_on_the_first_finds_the_ticket_admitted():
    booking = confirmed_booking()
    code = codes_of(booking)[0]
    with breakpoint_on("core_bookingline", "UPDATE", "NEW.admitted_at IS NOT NULL") as release:
        first = Background(lambda: ticket_admit(code=code))
        assert wait_until_waiting(first, on="advisory")
        second = Background(lambda: ticket_admit(code=code))
        # Share locks of one booking do not conflict: the second waits for the line's row.
        assert wait_until_waiting(second) in ROW_LOCK_WAITS
        release()
        admitted = first.join()
        with pytest.raises(Conflict) as again:
            second.join()
    assert again.value.code == "already_admitted"
    assert again.value.details["admitted_at"] == admitted.admitted_at.isoformat().replace("+00:00", "Z")


@pytest.mark.django_db(transaction=True)
def test_scans_of_different_tickets_of_one_booking_do_not_wait_for_each_other():
    booking = confirmed_booking()
    first_code, second_code = codes_of(booking)
    first_line = "NEW.seat_label = 'A1' AND NEW.admitted_at IS NOT NULL"
    with breakpoint_on("core_bookingline", "UPDATE", first_line) as release:
        first = Background(lambda: ticket_admit(code=first_code))
        assert wait_until_waiting(first, on="advisory")
        # The first holds the booking's share lock; the second shares it and goes through.
        assert ticket_admit(code=second_code).seat == "A2"
        release()
        assert first.join().seat == "A1"


@pytest.mark.django_db(transaction=True)
def test_many_connections_scanning_one_code_admit_it_once():
    booking = confirmed_booking()
    code = codes_of(booking)[0]
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def scan():
        try:
            start.wait(10)
            ticket_admit(code=code)
            return "admitted"
        except Conflict as refused:
            return refused.code
        finally:
            connection.close()

    threads = [threading.Thread(target=lambda: outcomes.append(scan())) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["admitted"] + ["already_admitted"] * 11
    assert BookingLine.objects.filter(booking=booking, admitted_at__isnull=False).count() == 1
