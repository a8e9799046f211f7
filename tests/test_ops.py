"""Health, readiness, the OpenAPI document, the demo data command, rate limits."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from swagger_spec_validator.validator20 import validate_spec

from core.models import Movie, Screen, Show
from core.redis import redis_client

pytestmark = pytest.mark.django_db

User = get_user_model()


def test_healthz(api):
    assert api.get("/healthz").json() == {"status": "ok"}


def test_readyz_ok(api):
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "broker": "ok"}


@pytest.fixture
def redis_unreachable(settings):
    """Point the service at a closed local port."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    settings.REDIS_SOCKET_TIMEOUT = 0.5
    redis_client.cache_clear()
    yield
    redis_client.cache_clear()


def test_readyz_names_unreachable_redis(api, redis_unreachable):
    response = api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert body["details"]["checks"]["redis"] == "unavailable"
    assert body["details"]["checks"]["database"] == "ok"
    assert response["Retry-After"]


def test_api_answers_503_when_redis_is_down(user_api, redis_unreachable):
    # The throttle counters live in Redis: an authenticated request cannot be metered.
    response = user_api.get("/api/v1/bookings")
    assert response.status_code == 503
    assert response.json()["details"] == {"dependency": "redis"}
    assert response["Retry-After"]


def test_swagger_json_is_valid_and_lists_every_route(api):
    response = api.get("/swagger.json")
    assert response.status_code == 200
    spec = json.loads(response.content)
    validate_spec(spec)
    assert set(spec["paths"]) == {
        "/auth/signup",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/me",
        "/movies",
        "/movies/{movie_id}",
        "/movies/{movie_id}/shows",
        "/shows",
        "/shows/{show_id}",
        "/shows/{show_id}/seats",
        "/screens",
        "/screens/{screen_id}",
        "/bookings",
        "/bookings/{booking_id}",
        "/bookings/{booking_id}/pay",
        "/payments/webhook",
        "/users/{user_id}/bookings",
        "/bookings/{booking_id}/tickets",
        "/tickets/{code}/qr.png",
        "/checkins",
        "/bookings/{booking_id}/confirm",
        "/shows/{show_id}/waitlist",
        "/waitlist",
        "/waitlist/{entry_id}",
    }
    assert spec["basePath"] == "/api/v1"
    assert spec["securityDefinitions"]["Bearer"]["in"] == "header"
    create = spec["paths"]["/bookings"]["post"]
    assert {"202", "400", "401", "409"} <= set(create["responses"])
    assert "Location" in create["responses"]["202"]["headers"]
    assert spec["paths"]["/movies"]["get"]["security"] == []
    # The QR image is loaded by an <img> tag: no token, and a PNG (its errors JSON).
    qr = spec["paths"]["/tickets/{code}/qr.png"]["get"]
    assert qr["security"] == []
    assert qr["produces"] == ["image/png", "application/json"]
    assert qr["responses"]["200"]["schema"] == {"type": "file"}


@pytest.mark.parametrize("path", ["/swagger/", "/redoc/"])
def test_docs_pages_render(api, path):
    response = api.get(path)
    assert response.status_code == 200
    assert b"<html" in response.content.lower()


def test_seed_demo_is_safe_to_run_twice(settings):
    settings.DEMO_USERS = True
    call_command("seed_demo", "--with-users")
    counts = (Movie.objects.count(), Screen.objects.count(), Show.objects.count())
    assert counts[0] == 12
    assert counts[1] >= 3
    assert counts[2] > 50
    call_command("seed_demo", "--with-users")
    assert (Movie.objects.count(), Screen.objects.count(), Show.objects.count()) == counts
    sizes = {s.rows * s.seats_per_row for s in Screen.objects.all()}
    assert len(sizes) == Screen.objects.count()


@pytest.mark.parametrize(("debug", "demo_users"), [(True, False), (False, True)])
def test_seed_demo_creates_the_demo_accounts_in_development(settings, debug, demo_users):
    settings.DEBUG, settings.DEMO_USERS = debug, demo_users
    call_command("seed_demo", "--with-users")
    assert User.objects.get(username="admin").check_password("admin-pass-123")
    assert User.objects.get(username="demo").check_password("demo-pass-123")


def test_seed_demo_refuses_the_demo_accounts_outside_development(settings):
    """Their passwords are published: with DEBUG off and no DEMO_USERS flag, none is created."""
    settings.DEBUG, settings.DEMO_USERS = False, False
    with pytest.raises(CommandError, match="DEMO_USERS=1"):
        call_command("seed_demo", "--with-users")
    assert not User.objects.filter(username__in=["admin", "demo"]).exists()
    assert not Movie.objects.exists()  # refused before anything was written
    call_command("seed_demo")  # the catalogue alone is fine anywhere
    assert Movie.objects.count() == 12


@pytest.fixture
def low_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "3/min", "user": "4/min", "auth": "2/min"},
    }
    from rest_framework.settings import api_settings

    api_settings.reload()
    from booking_api import throttles

    for cls in (throttles.AnonThrottle, throttles.UserThrottle, throttles.AuthThrottle):
        cls.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    yield
    for cls in (throttles.AnonThrottle, throttles.UserThrottle, throttles.AuthThrottle):
        del cls.THROTTLE_RATES
    api_settings.reload()


def test_anonymous_clients_are_throttled_with_retry_after(api, low_rates):
    statuses = [api.get("/api/v1/movies").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api.get("/api/v1/movies")
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_rotating_x_forwarded_for_does_not_escape_the_throttle(api, low_rates):
    statuses = [api.get("/api/v1/movies", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code for i in range(5)]
    assert statuses[-1] == 429


def test_users_are_throttled_per_user(user_api, other_api, low_rates):
    assert [user_api.get("/api/v1/bookings").status_code for _ in range(5)][-1] == 429
    assert other_api.get("/api/v1/bookings").status_code == 200


def test_throttle_counters_live_in_redis(api, low_rates):
    api.get("/api/v1/movies")
    assert list(redis_client().scan_iter("booking:throttle:anon:*"))
