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
