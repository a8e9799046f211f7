"""Fixtures: API clients with real JWTs, catalogue objects, and clean Redis keys.

Everything runs against the real PostgreSQL (pytest-django's test database) and the real
Redis (a separate database index, see tests/settings.py).
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from core.redis import redis_client
from tests import browser, openapi_check, pgbouncer, rabbitmq
from tests import settings as test_settings
from tests.factories import ScreenFactory, ShowFactory, UserFactory
from tests.harness import procs, service


def bearer(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


@pytest.fixture(scope="session", autouse=True)
def _redis_test_db():
    """The test Redis database starts and ends empty."""
    client = redis_client()
    client.flushdb()
    yield
    client.flushdb()


@pytest.fixture(scope="session", autouse=True)
def _rabbitmq_vhost():
    """On RabbitMQ (TEST_AMQP_URL), the run's virtual host exists for the run only."""
    if not rabbitmq.base_url():
        yield
        return
    rabbitmq.create(settings.CELERY_BROKER_URL)
    yield
    from booking_api.config.celery import app

    app.pool.force_close_all()
    rabbitmq.delete(settings.CELERY_BROKER_URL)


@pytest.fixture(scope="session", autouse=True)
def _metrics_dir():
    """Remove the metrics directory that tests/settings.py made for this run."""
    yield
    directory = Path(settings.PROMETHEUS_MULTIPROC_DIR)
    if directory.name.startswith(test_settings.METRICS_DIR_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)


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


@pytest.fixture(scope="session")
def _published_schema_checker():
    """The strict OpenAPI 3 checker, made once per session; None where node/npm is absent
    (tests/test_generated_client.py then says so in its skips)."""
    if openapi_check.node_missing_reason():
        return None
    openapi_check.validator()
    return openapi_check.check_django


@pytest.fixture(autouse=True)
def _responses_match_the_schema(request, _published_schema_checker):
    """Every /api/v1/ response that an APIClient receives, in every test, must be what the
    published schema documents (status, content type, headers, body; no undeclared field).
    A test that breaks the server on purpose opts out with @pytest.mark.unchecked_schema."""
    if _published_schema_checker is None or request.node.get_closest_marker("unchecked_schema"):
        yield
        return
    original = APIClient.request

    def checked(self, **kwargs):
        response = original(self, **kwargs)
        _published_schema_checker(response)
        return response

    APIClient.request = checked
    try:
        yield
    finally:
        APIClient.request = original


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


@pytest.fixture
def chromium():
    """Debian's /usr/bin/chromium for the browser tests (tests/browser.py), or a skip saying why."""
    return browser.chromium_or_skip()


# ---- end-to-end: real gunicorn and Celery worker processes -------------------------------


@dataclass
class LiveStack:
    base_url: str
    log_dir: Path
    web: procs.Proc
    workers: list

    def client(self, user=None, **kwargs) -> httpx.Client:
        headers = {"Authorization": bearer(user)} if user is not None else {}
        # Its /api/v1/ answers are checked against the published schema, as the APIClient's are.
        hooks = {"response": [openapi_check.check_httpx]} if not openapi_check.node_missing_reason() else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, event_hooks=hooks, **kwargs)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-4000:]}" for p in [self.web, *self.workers])


@pytest.fixture(scope="session")
def live_stack(django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn (2 workers) and a Celery worker (2 pool processes) on the test database."""
    log_dir = tmp_path_factory.mktemp("live")
    env = {}
    bouncer = None
    if pgbouncer.enabled():
        # TEST_PGBOUNCER: the service reaches the test database through a private PgBouncer.
        if reason := pgbouncer.missing_reason():
            pytest.fail(reason)
        bouncer = pgbouncer.PrivatePgBouncer.for_test_database()
        env = bouncer.start().service_env()
    # JSON logs, as a log collector reads them (tests/test_tracing.py parses them).
    web, base_url = service.start_web(log_dir, LOG_FORMAT="json", **env)
    try:
        # The fake payment provider's webhooks go to this stack's web process.
        webhook = f"{base_url}/api/v1/payments/webhook"
        worker = service.start_worker(
            log_dir, concurrency=2, LOG_FORMAT="json", PAYMENT_FAKE_WEBHOOK_URL=webhook, **env
        )
    except Exception:
        web.stop()
        if bouncer:
            bouncer.stop()
        raise
    stack = LiveStack(base_url=base_url, log_dir=log_dir, web=web, workers=[worker])
    yield stack
    for proc in [web, *stack.workers]:
        proc.stop()
    if bouncer:
        bouncer.stop()
