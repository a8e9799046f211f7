"""The Celery app, configured from Django settings (the CELERY_* names), and what every
worker process sets up when it starts. `celery -A workers` finds it through workers/__init__."""

import os
from logging.config import dictConfig

from celery import Celery
from celery.signals import setup_logging, worker_init, worker_process_init, worker_process_shutdown, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "booking_api.config.settings")

app = Celery("booking")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.imports = ("workers.tasks", "workers.maintenance", "workers.payments")
# The app of every thread that has none of its own: core publishes through celery.current_app.
app.set_default()


@setup_logging.connect
def use_django_logging(**kwargs) -> None:
    """Workers and beat log through settings.LOGGING, like the web processes: LOG_LEVEL,
    LOG_FORMAT and the request id on every line. Without this receiver Celery would set the
    root level from its own --loglevel (WARNING by default) and drop the INFO decision lines."""
    from django.conf import settings

    dictConfig(settings.LOGGING)


@worker_init.connect
def use_worker_database_timeouts(**kwargs) -> None:
    """A worker's sessions wait longer than a web request's (DB_WORKER_*_MS, see settings):
    a decision batch may legitimately take seconds, and no client is waiting on it. Runs in
    the worker's main process before the pool forks, so every pool process inherits it."""
    from django.conf import settings
    from django.db import connections

    if settings.DB_SESSION_OPTIONS["worker"]:
        settings.DATABASES["default"]["OPTIONS"]["options"] = settings.DB_SESSION_OPTIONS["worker"]
    if settings.DB_WORKER_NAME:
        # Behind PgBouncer: the alias whose server connections carry the worker timeouts.
        settings.DATABASES["default"]["NAME"] = settings.DB_WORKER_NAME
    # Connections opened before this point (none, normally) would keep the web values.
    connections.close_all()


@worker_process_init.connect
def archive_metrics_of_exited_processes(**kwargs) -> None:
    """A new pool process usually replaces one that exited (recycled, killed, crashed): merge
    the metrics files that process left into the archive, so that they do not pile up."""
    from core.metrics import archive_exited_processes

    archive_exited_processes()


@worker_process_shutdown.connect
@worker_shutdown.connect
def archive_own_metrics(**kwargs) -> None:
    """A pool process, or the worker's main process, that stops counting archives its files."""
    from core.metrics import archive_exited_processes

    archive_exited_processes(exiting=os.getpid())
