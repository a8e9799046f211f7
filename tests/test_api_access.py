"""Access control: anonymous, user A, user B and staff against every route and method.

Only the cells the contract allows succeed; every other cell is the contract's refusal
(401 without a token, 403 for a catalogue write or a check-in by a non-staff user, 404 for
another user's booking, 405 for a method the route does not have)."""

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from core import tickets
from core.models import BookedSeat, Booking, BookingLine
from tests.conftest import client_for
from tests.factories import PASSWORD, ScreenFactory, ShowFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "user_a", "user_b", "staff")


def everyone(status: int) -> dict:
    return dict.fromkeys(ROLES, status)


def signed_in(status: int) -> dict:
    return {"anonymous": 401, "user_a": status, "user_b": status, "staff": status}


def staff_only(status: int) -> dict:
    return {"anonymous": 401, "user_a": 403, "user_b": 403, "staff": status}


def owner_or_staff(status: int) -> dict:
    return {"anonymous": 401, "user_a": status, "user_b": 404, "staff": status}


@dataclass
class World:
    clients: dict
    user_a: object
    booking: Booking
    ids: dict

    def path(self, template: str) -> str:
        return "/api/v1" + template.format(**self.ids)


@pytest.fixture
def world():
    user_a, user_b, staff = UserFactory(), UserFactory(), UserFactory(is_staff=True)
    show = ShowFactory(screen__rows=5, screen__seats_per_row=8)
    booking = Booking.objects.create(user=user_a, show=show, quantity=1, status="confirmed", seats=["A1"])
    BookedSeat.objects.create(show=show, seat_label="A1", booking=booking)
    line = BookingLine.objects.create(
        booking=booking, seat_label="A1", seat_category="standard", ticket_type="adult", amount=Decimal("9.00")
    )
    clients = {"anonymous": APIClient(), "user_a": client_for(user_a), "user_b": client_for(user_b)}
    clients["staff"] = client_for(staff)
    ids = {
        "movie": show.movie_id,
        "screen": show.screen_id,
        "show": show.pk,
        "booking": booking.pk,
        "user_a": user_a.pk,
        "other_screen": ScreenFactory().pk,
        "code": tickets.ticket_code(line.ticket_id),
    }
    return World(clients=clients, user_a=user_a, booking=booking, ids=ids)


def _credentials(world):
    carol = UserFactory()
    return {"username": carol.username, "password": PASSWORD}


def _refresh(world):
    return {"refresh": str(RefreshToken.for_user(UserFactory()))}


BODIES = {
    "signup": lambda w: {"username": f"new{w.ids['show']}x", "email": "new@example.com", "password": "a-long-pass-23"},
    "login": _credentials,
    "refresh": _refresh,
    "movie": lambda w: {"title": "Matrix", "duration_minutes": 136},
    "movie_patch": lambda w: {"title": "Renamed"},
    "show": lambda w: {
        "movie": w.ids["movie"],
        "screen": w.ids["other_screen"],
        "starts_at": (timezone.now() + timedelta(days=3)).isoformat(),
        "price": "8.00",
    },
    "show_patch": lambda w: {"price": "5.00"},
    "screen": lambda w: {"name": "Matrix Hall", "rows": 2, "seats_per_row": 3},
    "booking": lambda w: {"show": w.ids["show"], "quantity": 1},
    "checkin": lambda w: {"code": w.ids["code"]},
}

MATRIX = [
    ("POST", "/auth/signup", "signup", everyone(201)),
    ("POST", "/auth/login", "login", everyone(200)),
    ("POST", "/auth/refresh", "refresh", everyone(200)),
    ("POST", "/auth/logout", "refresh", everyone(204)),
    ("GET", "/auth/me", None, signed_in(200)),
    ("GET", "/movies", None, everyone(200)),
    ("POST", "/movies", "movie", staff_only(201)),
    ("GET", "/movies/{movie}", None, everyone(200)),
    ("PATCH", "/movies/{movie}", "movie_patch", staff_only(200)),
    ("DELETE", "/movies/{movie}", None, staff_only(204)),
    ("GET", "/movies/{movie}/shows", None, everyone(200)),
    ("GET", "/shows", None, everyone(200)),
    ("POST", "/shows", "show", staff_only(201)),
    ("GET", "/shows/{show}", None, everyone(200)),
    ("PATCH", "/shows/{show}", "show_patch", staff_only(200)),
    ("GET", "/shows/{show}/seats", None, everyone(200)),
    ("GET", "/screens", None, everyone(200)),
    ("POST", "/screens", "screen", staff_only(201)),
    ("GET", "/screens/{screen}", None, everyone(200)),
    ("GET", "/bookings", None, signed_in(200)),
    ("POST", "/bookings", "booking", signed_in(202)),
    ("GET", "/bookings/{booking}", None, owner_or_staff(200)),
    ("DELETE", "/bookings/{booking}", None, owner_or_staff(200)),
    ("GET", "/users/{user_a}/bookings", None, owner_or_staff(200)),
    ("GET", "/bookings/{booking}/tickets", None, owner_or_staff(200)),
    # The code is the credential: no token needed (an <img> cannot send one).
    ("GET", "/tickets/{code}/qr.png", None, everyone(200)),
    # Staff and the scanners group only; not even the ticket's holder.
    ("POST", "/checkins", "checkin", staff_only(200)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, *_ in MATRIX])
def test_every_route_and_method_for_every_role(world, role, method, path, body, expected):
    data = BODIES[body](world) if body else None
    response = world.clients[role].generic(method, world.path(path), **_json(data))
    assert response.status_code == expected[role], response.content[:300]
    if response.status_code >= 400:
        assert set(response.json()) == {"code", "message", "details"}
    if response.status_code == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    if path.startswith("/bookings/") and role in ("anonymous", "user_b"):
        world.booking.refresh_from_db()
        assert world.booking.status == "confirmed", "another user's booking was changed"


def _json(data) -> dict:
    return {} if data is None else {"data": json.dumps(data), "content_type": "application/json"}


PATHS = sorted({path for _, path, *_ in MATRIX})
ALLOWED = {path: {method for method, p, *_ in MATRIX if p == path} for path in PATHS}
NOT_ALLOWED = [
    (method, path)
    for path in PATHS
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    if method not in ALLOWED[path]
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), NOT_ALLOWED, ids=[f"{m} {p}" for m, p in NOT_ALLOWED])
def test_methods_a_route_does_not_have_are_405_for_everyone(world, role, method, path):
    response = world.clients[role].generic(method, world.path(path), **_json({}))
    assert response.status_code == 405, response.content[:300]
    assert response.json()["code"] == "method_not_allowed"


def test_lists_show_only_the_callers_own_bookings(world):
    a, b, staff = (world.clients[r] for r in ("user_a", "user_b", "staff"))
    own = b.post("/api/v1/bookings", {"show": world.ids["show"], "quantity": 1}).json()["id"]
    assert [x["id"] for x in a.get("/api/v1/bookings").json()["results"]] == [str(world.booking.pk)]
    assert [x["id"] for x in b.get("/api/v1/bookings").json()["results"]] == [own]
    assert staff.get("/api/v1/bookings").json()["results"] == []  # staff's own list is their own
    assert [x["id"] for x in staff.get(world.path("/users/{user_a}/bookings")).json()["results"]] == [
        str(world.booking.pk)
    ]
    assert b.get(world.path("/users/{user_a}/bookings")).status_code == 404


def test_another_users_booking_is_invisible_and_uncancellable(world):
    b = world.clients["user_b"]
    for _ in range(2):
        assert b.get(world.path("/bookings/{booking}")).status_code == 404
        assert b.delete(world.path("/bookings/{booking}")).status_code == 404
    world.booking.refresh_from_db()
    assert world.booking.status == "confirmed"
    assert BookedSeat.objects.filter(booking=world.booking).exists()
    # The same answer as for a booking that does not exist: nothing leaks.
    missing = b.get("/api/v1/bookings/00000000-0000-0000-0000-000000000000").json()
    assert b.get(world.path("/bookings/{booking}")).json() == missing
