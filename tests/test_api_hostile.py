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
