"""The service's processes for tests: gunicorn, Celery workers and beat as subprocesses.

By default they use the test database that pytest-django created and the test Redis database, so a
test marked `django_db(transaction=True)` can create rows, drive the API over HTTP and
check the results in SQL.
"""

import contextlib
import os
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

from tests.harness.procs import BIN, Proc, free_port, wait_until


def service_env(**overrides) -> dict:
    """Environment for a subprocess of the service, pointed at the test database."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"postgres://{db['USER'] or 'root'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        PYTHONUNBUFFERED="1",
        BOOKING_RECOVERY_GRACE_SECONDS=str(settings.BOOKING_RECOVERY_GRACE_SECONDS),
    )
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def start_web(log_dir: Path, *, workers: int = 2, **env) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(
        "web",
        [str(BIN / "gunicorn"), "-c", "booking_api/config/gunicorn.conf.py"],
        service_env(PORT=port, WEB_CONCURRENCY=workers, **env),
        log_dir / f"web-{port}.log",
    ).start()
    base_url = f"http://127.0.0.1:{port}"
    wait_until(lambda: healthy(base_url), timeout=30, what=f"gunicorn on {base_url}", proc=proc)
    return proc, base_url


def start_worker(log_dir: Path, *, concurrency: int = 2, name: str = "w1", extra_args: tuple = (), **env) -> Proc:
    proc = Proc(
        f"worker-{name}",
        [
            str(BIN / "celery"),
            "-A",
            "workers",
            "worker",
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--hostname",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
            *extra_args,
        ],
        service_env(**env),
        log_dir / f"worker-{name}.log",
    ).start()
    try:
        wait_until(lambda: "ready" in proc.log(), timeout=60, what=f"celery worker {name}", proc=proc)
    except Exception:
        proc.stop()  # a worker that never got ready must not outlive the test
        raise
    return proc


def start_beat(log_dir: Path, **env) -> Proc:
    """`celery beat`, which schedules the recovery job (BOOKING_RECOVERY_INTERVAL_SECONDS)."""
    proc = Proc(
        "beat",
        [
            str(BIN / "celery"),
            "-A",
            "workers",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(log_dir / "beat-schedule"),
            "--pidfile",
            str(log_dir / "beat.pid"),
        ],
        service_env(**env),
        log_dir / "beat.log",
    ).start()
    wait_until(lambda: "beat: Starting" in proc.log(), timeout=60, what="celery beat", proc=proc)
    return proc


def healthy(base_url: str) -> bool:
    """Whether the web process at `base_url` answers its health check."""
    try:
        return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def broker_at(url: str):
    """This process's Celery app publishes to (and reads queue lengths from) `url`."""
    from booking_api.config.celery import app

    original = app.conf.broker_url
    # Celery reads CELERY_BROKER_URL from the environment before its configuration (a run
    # on RabbitMQ sets it, tests/settings.py).
    original_env = os.environ.pop("CELERY_BROKER_URL", None)
    _use_broker(app, url)
    try:
        yield
    finally:
        if original_env is not None:
            os.environ["CELERY_BROKER_URL"] = original_env
        _use_broker(app, original)


def _use_broker(app, url: str) -> None:
    # kombu keeps its connection and producer pools per broker URL; dropping the app's
    # references makes it look them up again for the new URL (the old pools stay open).
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None
