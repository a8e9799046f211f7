"""Settings for the test suite: the real settings, on a separate Redis database.

Defaults only: CI or a developer can point tests elsewhere with the same variables.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Tests fire many requests from one address; rate limits have tests of their own.
os.environ.setdefault("THROTTLE_ANON", "100000/min")
os.environ.setdefault("THROTTLE_USER", "100000/min")
os.environ.setdefault("THROTTLE_AUTH", "100000/min")
os.environ.setdefault("CACHE_KEY_PREFIX", "booking-test")

from booking_api.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users in tests
