"""Fixtures: API clients with real JWTs, catalogue objects, and clean Redis keys.

Everything runs against the real PostgreSQL (pytest-django's test database) and the real
Redis (a separate database index, see tests/settings.py).
"""

import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from core.redis import redis_client
from tests.factories import ScreenFactory, ShowFactory, UserFactory


def bearer(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


@pytest.fixture(scope="session", autouse=True)
def _redis_test_db():
    """The test Redis database starts and ends empty."""
    client = redis_client()
    client.flushdb()
    yield
    client.flushdb()


@pytest.fixture(autouse=True)
def _clean_redis_keys():
    """Remove this service's keys (locks, wake-up markers, throttles) after each test.

    Not FLUSHDB: a worker started by the e2e fixtures keeps its queue bindings there."""
    yield
    client = redis_client()
    for pattern in ("booking:*", f"{settings.CACHES['default']['KEY_PREFIX']}:*"):
        keys = list(client.scan_iter(pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


@pytest.fixture
def user_api(user):
    return client_for(user)


@pytest.fixture
def other_api(other_user):
    return client_for(other_user)


@pytest.fixture
def staff_api(staff):
    return client_for(staff)


@pytest.fixture
def screen(db):
    return ScreenFactory(rows=5, seats_per_row=8)


@pytest.fixture
def show(db, screen):
    return ShowFactory(screen=screen)
