"""Settings of the benchmark's processes: the real settings, plus two bench-only pieces.

- ROOT_URLCONF adds `GET /bench/noop`, an authenticated request that does nothing, as the
  ceiling of any authenticated request through the same middleware, authentication,
  throttles and renderer. It exists only in processes started with these settings, never
  in the service's own URLs.
- CELERY_INCLUDE registers `bench.noop`, the no-op task of the Celery baseline, in the
  worker started from the Procfile's unchanged command.
"""

from booking_api.config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
CELERY_INCLUDE = ("bench.tasks",)
