"""The operators' admin: finding bookings, and cancelling a show through the show service."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from core import selectors
from core.models import BookedSeat, Booking, Show
from core.services.decisions import booking_decide_batch
from core.services.submission import booking_submit
from core.services.waitlist import waitlist_join
from tests.factories import ShowFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def booked_show(show):
    """A show with two confirmed bookings (3 seats held) and one still pending."""
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    confirmed = [
        booking_submit(user_id=alice.pk, show_id=show.pk, seats=["A1", "A2"])[0],
        booking_submit(user_id=bob.pk, show_id=show.pk, quantity=1)[0],
    ]
    booking_decide_batch(show_id=show.pk)
    pending = booking_submit(user_id=bob.pk, show_id=show.pk, seats=["B1"])[0]
    show.confirmed, show.pending = confirmed, pending
    return show


def cancel_url(show) -> str:
    return f"/admin/core/show/{show.pk}/cancel/"


def test_the_confirmation_page_says_what_cancelling_will_do(admin_client, booked_show):
    page = admin_client.get(cancel_url(booked_show))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Cancelling cannot be undone" in text
    rows = page.context["rows"]
    assert [(r["pending"], r["confirmed"], r["seats"]) for r in rows] == [(1, 2, 3)]
    assert "Yes, cancel this show" in text
    # Nothing happened yet.
    assert Show.objects.get(pk=booked_show.pk).status == Show.Status.SCHEDULED
    assert BookedSeat.objects.filter(show=booked_show).count() == 3


def test_confirming_cancels_the_show_through_the_service_and_frees_its_seats(admin_client, booked_show):
    response = admin_client.post(cancel_url(booked_show), follow=True)
    assert response.redirect_chain[-1][0] == f"/admin/core/show/{booked_show.pk}/change/"
    assert "1 pending booking(s) failed, 2 confirmed booking(s) cancelled, 3 seat(s) freed" in response.content.decode()

    assert Show.objects.get(pk=booked_show.pk).status == Show.Status.CANCELLED
    pending = Booking.objects.get(pk=booked_show.pending.pk)
    assert (pending.status, pending.failure_reason) == ("failed", "show_cancelled")
    assert {b.status for b in Booking.objects.filter(pk__in=[b.pk for b in booked_show.confirmed])} == {"cancelled"}
    assert not BookedSeat.objects.filter(show=booked_show).exists()
    seat_map = selectors.show_seat_map(show_id=booked_show.pk)
    assert seat_map["available"] == seat_map["total"]
    assert LogEntry.objects.filter(object_id=str(booked_show.pk), change_message__contains="Cancelled").exists()


def test_the_list_action_asks_first_then_cancels_only_the_selected_shows(admin_client, booked_show):
    other = ShowFactory()
    form = {"action": "cancel_shows", "_selected_action": [booked_show.pk]}
    page = admin_client.post("/admin/core/show/", form)
    assert page.status_code == 200
    assert page.template_name == "admin/core/show/cancel_confirmation.html"
    assert Show.objects.get(pk=booked_show.pk).status == Show.Status.SCHEDULED

    admin_client.post("/admin/core/show/", {**form, "post": "yes"})
    assert Show.objects.get(pk=booked_show.pk).status == Show.Status.CANCELLED
    assert Show.objects.get(pk=other.pk).status == Show.Status.SCHEDULED
    assert not BookedSeat.objects.filter(show=booked_show).exists()


def test_a_cancelled_show_has_nothing_left_to_confirm(admin_client, booked_show):
    admin_client.post(cancel_url(booked_show))
    page = admin_client.get(cancel_url(booked_show))
    assert "already cancelled" in page.content.decode()
    assert "Yes, cancel" not in page.content.decode()
    change = admin_client.get(f"/admin/core/show/{booked_show.pk}/change/").content.decode()
    assert "Cancel this show" not in change


def test_the_show_page_links_to_the_cancellation(admin_client, show):
    assert cancel_url(show) in admin_client.get(f"/admin/core/show/{show.pk}/change/").content.decode()


def test_only_staff_with_change_permission_can_cancel(client, booked_show):
    client.force_login(UserFactory())
    assert client.post(cancel_url(booked_show)).status_code == 302  # to the admin login
    staff_without_permission = UserFactory(is_staff=True)
    client.force_login(staff_without_permission)
    assert client.post(cancel_url(booked_show)).status_code == 403
    assert Show.objects.get(pk=booked_show.pk).status == Show.Status.SCHEDULED


@pytest.mark.parametrize(
    "term",
    [
        lambda show: str(show.pending.pk),
        lambda show: "bob",
        lambda show: "bob@example.com",
        lambda show: "req-admin-1",
    ],
    ids=["booking id", "username", "email", "request id"],
)
def test_bookings_are_found_by_id_user_and_request_id(admin_client, booked_show, term):
    Booking.objects.filter(pk=booked_show.pending.pk).update(request_id="req-admin-1")
    page = admin_client.get("/admin/core/booking/", {"q": term(booked_show)})
    assert page.status_code == 200
    found = {b.pk for b in page.context["cl"].result_list}
    assert booked_show.pending.pk in found
    assert booked_show.confirmed[0].pk not in found  # alice's


def test_bookings_are_found_by_show_id_and_odd_terms_do_not_break_the_search(admin_client, booked_show):
    by_show = admin_client.get("/admin/core/booking/", {"q": str(booked_show.pk)})
    assert len(by_show.context["cl"].result_list) == 3
    for odd in ("not-a-uuid", "12345678901234567890123", "%", "A1 B2"):
        assert admin_client.get("/admin/core/booking/", {"q": odd}).status_code == 200


def test_the_overdue_filter_lists_bookings_pending_past_the_grace_period(admin_client, booked_show, settings):
    settings.BOOKING_RECOVERY_GRACE_SECONDS = 10
    Booking.objects.filter(pk=booked_show.pending.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    page = admin_client.get("/admin/core/booking/", {"waiting": "overdue"})
    assert [b.pk for b in page.context["cl"].result_list] == [booked_show.pending.pk]
    for status in ("pending", "confirmed"):
        assert admin_client.get("/admin/core/booking/", {"status__exact": status}).status_code == 200


def test_waiting_lists_are_listed_and_found_by_show_read_only(admin_client):
    show = ShowFactory(screen__rows=1, screen__seats_per_row=1)
    booking_submit(user_id=UserFactory().pk, show_id=show.pk, seats=["A1"])
    booking_decide_batch(show_id=show.pk)
    entry = waitlist_join(user_id=UserFactory(username="carol").pk, show_id=show.pk, quantity=1)
    listed = admin_client.get("/admin/core/waitlistentry/", {"q": str(show.pk)})
    assert listed.status_code == 200
    assert f"/admin/core/waitlistentry/{entry.pk}/change/" in listed.content.decode()
    assert admin_client.get("/admin/core/waitlistentry/", {"q": "nobody"}).context["cl"].result_count == 0
    page = admin_client.get(f"/admin/core/waitlistentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert 'name="quantity"' not in page.content.decode()  # read-only
    assert admin_client.get("/admin/core/waitlistentry/add/").status_code == 403
