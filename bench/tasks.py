"""The Celery baseline's no-op task, and a readiness mark (registered in the worker through
bench.settings.CELERY_INCLUDE)."""

import os

from celery import shared_task
from celery.signals import worker_ready

from core.redis import redis_client

NOOP_COUNTER = "bench:noop:done"
READY_KEY = "bench:worker:ready"


@shared_task(name="bench.noop", ignore_result=True)
def noop() -> None:
    # One INCR, so that the benchmark can see when the last task ran.
    redis_client().incr(NOOP_COUNTER)


@worker_ready.connect
def _mark_ready(**kwargs) -> None:
    # The Procfile's worker logs at WARNING, so "ready" never reaches its log: tell the
    # benchmark through Redis instead.
    redis_client().set(READY_KEY, os.getpid())
