"""Tickets, their QR codes and check-in over HTTP (every answer checked against the schema)."""

import importlib
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from core import tickets
from core.models import BookingLine
from core.selectors import SCANNERS_GROUP
from core.services.decisions import booking_decide_batch
from tests.conftest import client_for
from tests.factories import ShowFactory, UserFactory
from tests.locking import pending_booking

pytestmark = pytest.mark.django_db

CHECKINS = "/api/v1/checkins"


def confirmed(user, show=None, seats=("A1", "A2")):
    booking = pending_booking(user, show or ShowFactory(), seats=list(seats))
    booking_decide_batch(show_id=booking.show_id)
    booking.refresh_from_db()
    return booking


@pytest.fixture
def scanner_api():
    # The group comes with migration 0010; a transactional test elsewhere may have flushed it.
    group, _ = Group.objects.get_or_create(name=SCANNERS_GROUP)
    scanner = UserFactory()
    scanner.groups.add(group)
    return client_for(scanner)


def test_a_confirmed_booking_lists_one_ticket_per_seat_with_its_code_and_qr_url(user, user_api):
    booking = confirmed(user)
    response = user_api.get(f"/api/v1/bookings/{booking.pk}/tickets")
    assert response.status_code == 200
    body = response.json()
    assert [t["seat"] for t in body] == ["A1", "A2"]
    assert [t["ticket_type"] for t in body] == ["adult", "adult"]
    lines = list(BookingLine.objects.filter(booking=booking).order_by("id"))
    assert [tickets.ticket_id_from_code(t["code"]) for t in body] == [line.ticket_id for line in lines]
    for ticket in body:
        # Opaque: neither the booking's id nor a line's row id shows.
        assert str(booking.pk) not in ticket["code"]
        assert str(booking.pk) not in ticket["qr"]
        assert ticket["qr"] == f"http://testserver/api/v1/tickets/{ticket['code']}/qr.png"
    # The trailing-slash twin is the same resource.
    assert user_api.get(f"/api/v1/bookings/{booking.pk}/tickets/").json() == body


def test_tickets_of_another_users_booking_are_404_and_staff_see_them(user, other_api, staff_api):
    booking = confirmed(user)
    assert other_api.get(f"/api/v1/bookings/{booking.pk}/tickets").status_code == 404
    assert len(staff_api.get(f"/api/v1/bookings/{booking.pk}/tickets").json()) == 2
    assert APIClient().get(f"/api/v1/bookings/{booking.pk}/tickets").status_code == 401


def test_a_booking_that_is_not_confirmed_has_no_tickets(user, user_api):
    pending = pending_booking(user, ShowFactory(), seats=["A1"])
    response = user_api.get(f"/api/v1/bookings/{pending.pk}/tickets")
    assert response.status_code == 409
    assert response.json()["code"] == "booking_not_confirmed"
    assert response.json()["details"] == {"status": "pending"}
    held = confirmed(user, ShowFactory(payment_required=True, price=Decimal("5.00")), seats=["A1"])
    assert held.status == "held"
    assert user_api.get(f"/api/v1/bookings/{held.pk}/tickets").json()["code"] == "booking_not_confirmed"
    cancelled = confirmed(user, seats=["B1"])
    user_api.delete(f"/api/v1/bookings/{cancelled.pk}")
    assert user_api.get(f"/api/v1/bookings/{cancelled.pk}/tickets").status_code == 409


def test_the_qr_url_serves_a_png_without_a_token_and_a_forged_code_is_404(user, user_api):
    booking = confirmed(user)
    ticket = user_api.get(f"/api/v1/bookings/{booking.pk}/tickets").json()[0]
    anonymous = APIClient()
    image = anonymous.get(ticket["qr"], HTTP_ACCEPT="image/png")
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert image["Cache-Control"] == "private, max-age=86400"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
    # A stale token does not spoil the image (the route reads none).
    assert APIClient(HTTP_AUTHORIZATION="Bearer expired.token.here").get(ticket["qr"]).status_code == 200
    forged = ticket["code"][:-2] + ("AA" if not ticket["code"].endswith("AA") else "BB")
    for code in (forged, "nothing", "x" * 300):
        response = anonymous.get(f"/api/v1/tickets/{code}/qr.png", HTTP_ACCEPT="image/png")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "ticket_not_found"


def test_a_scanner_admits_a_ticket_once(user, scanner_api):
    booking = confirmed(user)
    code = tickets.ticket_code(BookingLine.objects.filter(booking=booking).order_by("id")[0].ticket_id)
    admitted = scanner_api.post(CHECKINS, {"code": code}, format="json")
    assert admitted.status_code == 200
    body = admitted.json()
    assert (body["status"], body["show"], body["seat"]) == ("admitted", booking.show_id, "A1")
    again = scanner_api.post(CHECKINS, {"code": f"  {code}\n"}, format="json")  # a scanner's trailing Enter
    assert again.status_code == 409
    assert again.json()["code"] == "already_admitted"
    assert again.json()["details"] == {"admitted_at": body["admitted_at"]}


def test_staff_may_scan_and_void_tickets_are_409(user, user_api, staff_api):
    booking = confirmed(user)
    code = user_api.get(f"/api/v1/bookings/{booking.pk}/tickets").json()[0]["code"]
    assert user_api.delete(f"/api/v1/bookings/{booking.pk}").status_code == 200
    void = staff_api.post(CHECKINS, {"code": code}, format="json")
    assert void.status_code == 409
    assert void.json()["code"] == "ticket_void"


def test_forged_codes_are_404_and_malformed_bodies_400(scanner_api):
    for code in ("forged", tickets.ticket_code(tickets.uuid.uuid4(), key=b"another-key" * 5)):
        response = scanner_api.post(CHECKINS, {"code": code}, format="json")
        assert response.status_code == 404
        assert response.json()["code"] == "ticket_not_found"
    assert scanner_api.post(CHECKINS, {"code": 12}, format="json").status_code == 404  # "12": forged
    assert scanner_api.post(CHECKINS, {}, format="json").status_code == 400
    assert scanner_api.post(CHECKINS, {"code": ["x"]}, format="json").status_code == 400
    assert scanner_api.post(CHECKINS, {"code": "x" * 257}, format="json").status_code == 400


def test_only_staff_and_scanners_check_in(user, user_api, other_api):
    booking = confirmed(user)
    code = user_api.get(f"/api/v1/bookings/{booking.pk}/tickets").json()[0]["code"]
    # Not even the ticket's owner: a holder cannot admit themselves.
    for client in (user_api, other_api):
        refused = client.post(CHECKINS, {"code": code}, format="json")
        assert refused.status_code == 403
        assert refused.json()["code"] == "permission_denied"
    assert APIClient().post(CHECKINS, {"code": code}, format="json").status_code == 401
    assert not BookingLine.objects.filter(booking=booking, admitted_at__isnull=False).exists()


def test_a_booking_with_an_admitted_ticket_is_not_cancelled(user, user_api, scanner_api):
    booking = confirmed(user)
    code = user_api.get(f"/api/v1/bookings/{booking.pk}/tickets").json()[1]["code"]
    assert scanner_api.post(CHECKINS, {"code": code}, format="json").status_code == 200
    refused = user_api.delete(f"/api/v1/bookings/{booking.pk}")
    assert refused.status_code == 409
    assert refused.json()["code"] == "ticket_admitted"


def test_check_in_has_its_own_rate_not_the_per_user_one(settings, user, scanner_api):
    from rest_framework.settings import api_settings

    from booking_api import throttles

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "user": "2/min",
            "checkin": "3/min",
        },
    }
    api_settings.reload()
    classes = (throttles.UserThrottle, throttles.CheckinThrottle)
    for cls in classes:
        cls.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        statuses = [scanner_api.post(CHECKINS, {"code": "forged"}, format="json").status_code for _ in range(4)]
    finally:
        for cls in classes:
            del cls.THROTTLE_RATES
        api_settings.reload()
    # Past the per-user rate (2) but within the check-in rate (3); then throttled.
    assert statuses == [404, 404, 404, 429]


def test_the_default_check_in_rate_serves_a_busy_door(settings):
    rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["checkin"]
    assert rate == "6000/min"


def test_the_migration_makes_the_scanners_group():
    migration = importlib.import_module("core.migrations.0011_scanners_group")
    from django.apps import apps

    Group.objects.filter(name=SCANNERS_GROUP).delete()
    migration.create_scanners_group(apps, None)
    migration.create_scanners_group(apps, None)  # twice: harmless
    assert Group.objects.filter(name=SCANNERS_GROUP).count() == 1
    assert migration.SCANNERS_GROUP == SCANNERS_GROUP


def test_the_admin_shows_when_each_ticket_was_admitted_read_only(admin_client, user):
    booking = confirmed(user)
    line = BookingLine.objects.filter(booking=booking).order_by("id")[0]
    from core.services.checkins import ticket_admit

    admission = ticket_admit(code=tickets.ticket_code(line.ticket_id))
    page = admin_client.get(f"/admin/core/booking/{booking.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Admitted at" in html
    assert 'name="lines-0-admitted_at"' not in html  # no input: read-only
    from django.utils import formats, timezone

    assert formats.date_format(timezone.localtime(admission.admitted_at), "DATETIME_FORMAT") in html
