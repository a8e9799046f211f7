"""Settings for the test suite: the real settings, on a separate Redis database.

Defaults only: CI or a developer can point tests elsewhere with the same variables.
"""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("TICKET_SIGNING_KEY", "test-ticket-signing-key-not-for-production-0123456789")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Tests fire many requests from one address; rate limits have tests of their own.
os.environ.setdefault("THROTTLE_ANON", "100000/min")
os.environ.setdefault("THROTTLE_USER", "100000/min")
os.environ.setdefault("THROTTLE_AUTH", "100000/min")
os.environ.setdefault("THROTTLE_LOGIN_USERNAME", "100000/min")
os.environ.setdefault("CACHE_KEY_PREFIX", "booking-test")
# Tests submit many bookings per user before any is decided; the pending limit has tests of
# its own (tests/test_services_selling.py), which set it.
os.environ.setdefault("BOOKING_MAX_PENDING_PER_USER", "1000")
METRICS_DIR_PREFIX = "booking-test-metrics-"
# The test process and the gunicorn/Celery subprocesses it starts (which inherit the
# environment) count metrics into one directory of their own; conftest removes it.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)
os.environ.setdefault("METRICS_TOKEN", "test-metrics-token")
# Payments with the fake provider (its tok_* tokens), its webhooks signed with a test secret.
os.environ.setdefault("PAYMENT_FAKE_ALLOWED", "1")
os.environ.setdefault("PAYMENT_WEBHOOK_SECRET", "test-payment-webhook-secret-0123456789")
# Nowhere by default (port 9, discard): a test that wants the fake's webhooks delivered
# starts its worker with its own web process's URL (conftest's live_stack, FaultStack).
os.environ.setdefault("PAYMENT_FAKE_WEBHOOK_URL", "http://127.0.0.1:9/api/v1/payments/webhook")

# On RabbitMQ (TEST_AMQP_URL set): a virtual host of the run's own, made by conftest; the
# processes the tests start are given theirs.
if os.environ.get("TEST_AMQP_URL"):
    from tests import rabbitmq

    if not os.environ.get("CELERY_BROKER_URL", "").startswith(rabbitmq.base_url() + "/"):
        os.environ["CELERY_BROKER_URL"] = rabbitmq.new_vhost_url()

from booking_api.config.settings import *  # noqa: F403, E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users in tests
