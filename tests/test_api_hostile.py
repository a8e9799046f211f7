"""Hostile input: whatever a client sends, the answer is a clean JSON 4xx with the error
shape, never an HTML page, a 500, or another seat than the one named."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

SHAPE = {"code", "message", "details"}


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = response.json()
    assert set(body) == SHAPE
    if code:
        assert body["code"] == code
    return body


@pytest.fixture
def browserless():
    """A client that gets CSRF checks like a real one (Django's test client skips them)."""
    return APIClient(enforce_csrf_checks=True)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/bookings/2", "/api/v1/movies/abc", "/nope/"])
def test_unsafe_methods_on_unknown_routes_are_json_404(browserless, method, path):
    _error(getattr(browserless, method)(path), 404, "not_found")


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_probes_refuse_other_methods_with_json_405(browserless, path, method):
    response = getattr(browserless, method)(path)
    _error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "body",
    [
        "[" * 30_000 + "]" * 30_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        '{"show": 1, "seats": ' + "[" * 5_000 + "]" * 5_000 + "}",
    ],
    ids=["arrays", "objects", "inside-a-field"],
)
@pytest.mark.parametrize("path", ["/api/v1/bookings", "/api/v1/auth/login"])
def test_deeply_nested_json_is_a_parse_error(user_api, path, body):
    user_api.raise_request_exception = False
    _error(user_api.generic("POST", path, body, content_type="application/json"), 400, "parse_error")


# Spellings that a lenient parser could take for A1, and labels that are no seat at all
# ("\uff21\uff11" is full-width A1, "A\u0661" has an Arabic-Indic digit one).
NOT_SEATS = ["A01", "a1", " A1", "A1 ", "A1\n", "\tA1", "A 1", "\uff21\uff11", "A\u0661", "A1.0", "A+1", "AA1"]
NOT_SEATS += ["A0", "Z1", "A99", ""]


@pytest.mark.parametrize("label", NOT_SEATS)
def test_a_seat_label_is_exact_or_refused_never_an_alias(user_api, other_user, show, label):
    from core.models import BookedSeat, Booking

    holder = Booking.objects.create(user=other_user, show=show, quantity=1, status="confirmed", seats=["A1"])
    BookedSeat.objects.create(show=show, seat_label="A1", booking=holder)
    body = _error(user_api.post("/api/v1/bookings", {"show": show.pk, "seats": [label]}), 400, "validation_error")
    assert "seats" in body["details"]
    assert Booking.objects.count() == 1


@pytest.mark.parametrize("starts_at", ["9999-12-31T23:00:00Z", "9999-12-29T23:00:00Z", "0001-01-01T00:00:00Z"])
def test_a_show_at_the_ends_of_the_calendar_is_a_400(staff_api, show, starts_at):
    body = {"movie": show.movie_id, "screen": show.screen_id, "starts_at": starts_at, "price": "9.00"}
    assert "starts_at" in _error(staff_api.post("/api/v1/shows", body), 400, "validation_error")["details"]
    moved = _error(staff_api.patch(f"/api/v1/shows/{show.pk}", {"starts_at": starts_at}), 400, "validation_error")
    assert "starts_at" in moved["details"]


def test_a_longer_movie_cannot_push_a_show_past_the_calendar(staff_api, show):
    late = {"movie": show.movie_id, "screen": show.screen_id, "starts_at": "9999-12-29T20:00:00Z", "price": "9.00"}
    assert staff_api.post("/api/v1/shows", late).status_code == 201
    response = staff_api.patch(f"/api/v1/movies/{show.movie_id}", {"duration_minutes": 1000})
    assert "duration_minutes" in _error(response, 400, "validation_error")["details"]


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_listing_shows_on_the_first_or_last_day_of_the_calendar(api, show, day):
    assert api.get(f"/api/v1/shows?date={day}").json()["results"] == []
    assert api.get(f"/api/v1/movies/{show.movie_id}/shows?date={day}").json()["results"] == []
