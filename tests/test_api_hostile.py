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


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", ""],
)
def test_a_body_that_is_not_json_is_415(user_api, show, content_type):
    body = f'{{"show": {show.pk}, "quantity": 1}}'
    response = user_api.generic("POST", "/api/v1/bookings", body, content_type=content_type)
    _error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "body",
    [b'{"show": "\xff\xfe"}', '{"show": 1, "quantity": 1}'.encode("utf-16"), b"\xc3\x28", b'{"show": 1}\x00'],
    ids=["invalid-utf8", "utf16", "truncated-sequence", "trailing-nul"],
)
def test_a_body_that_is_not_utf8_json_is_400(user_api, body):
    _error(user_api.generic("POST", "/api/v1/bookings", body, content_type="application/json"), 400, "parse_error")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/bookings", {"show": 1, "seats": ["A\x001"]}, "seats"),
        ("/api/v1/auth/signup", {"username": "a\x00b", "email": "a@example.com", "password": "long-pass"}, "username"),
        ("/api/v1/auth/login", {"username": "a", "password": "pass\x00word"}, "password"),
        ("/api/v1/auth/refresh", {"refresh": "abc\x00def"}, "refresh"),
        ("/api/v1/movies", {"title": "The\x00Movie", "duration_minutes": 90}, "title"),
    ],
)
def test_null_bytes_in_json_strings_are_400(staff_api, path, body, field):
    assert field in _error(staff_api.post(path, body), 400, "validation_error")["details"]


@pytest.mark.parametrize("query", ["search=%00", "genre=a%00b", "language=%00", "ordering=%00title"])
def test_null_bytes_in_query_strings_are_400(api, query):
    _error(api.get(f"/api/v1/movies?{query}"), 400, "validation_error")


def test_huge_page_sizes_are_capped_at_100(api, staff_api):
    for n in range(105):
        staff_api.post("/api/v1/screens", {"name": f"Hall {n}", "rows": 1, "seats_per_row": 1})
    for size in ("1000000", str(10**40), "100.5", "-5", "abc", "0", ""):
        body = api.get(f"/api/v1/screens?page_size={size}").json()
        assert body["count"] == 105
        assert len(body["results"]) <= 100


@pytest.mark.parametrize("page", ["0", "-1", str(10**40), "abc", "1.5", "%00"])
def test_pages_that_do_not_exist_are_json_404(api, page):
    _error(api.get(f"/api/v1/movies?page={page}"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/movies/-1",
        "/api/v1/movies/0",
        "/api/v1/movies/99999999999999999999999",
        "/api/v1/movies/1e3",
        "/api/v1/shows/-5/seats",
        f"/api/v1/shows/{2**63}",
        "/api/v1/screens/999999999999999999",
        "/api/v1/movies/1%00",
        "/api/v1/bookings/00000000-0000-0000-0000-000000000000",
        "/api/v1/bookings/-1",
        "/api/v1/users/-1/bookings",
        "/api/v1/users/99999999999999999999/bookings",
    ],
)
def test_negative_and_enormous_ids_are_json_404(user_api, path):
    _error(user_api.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"show": -1, "quantity": 1},
        {"show": 0, "quantity": 1},
        {"show": 2**63, "quantity": 1},
        {"show": 10**40, "quantity": 1},
        {"show": 1.5, "quantity": 1},
        {"show": None, "quantity": 1},
        {"show": [1], "quantity": 1},
        {"show": {"id": 1}, "quantity": 1},
        {"show": 1, "quantity": 10**40},
        {"show": 1, "quantity": -(2**63)},
        {"show": 1, "seats": "A1"},
        {"show": 1, "seats": [["A1"]]},
        {"show": 1, "seats": ["A1"] * 1000},
        {"show": 1, "seats": ["x" * 10_000]},
    ],
)
def test_out_of_range_and_wrongly_typed_booking_fields_are_400(user_api, body):
    from core.models import Booking

    _error(user_api.post("/api/v1/bookings", body), 400, "validation_error")
    assert not Booking.objects.exists()
