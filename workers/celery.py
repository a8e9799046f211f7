"""The Celery app, configured from Django settings (the CELERY_* names)."""

import os
from logging.config import dictConfig

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "booking_api.settings")

app = Celery("booking")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.imports = ("workers.tasks", "workers.maintenance")


@setup_logging.connect
def use_django_logging(**kwargs) -> None:
    """Workers and beat log through settings.LOGGING, like the web processes: LOG_LEVEL,
    LOG_FORMAT and the request id on every line. Without this receiver Celery would set the
    root level from its own --loglevel (WARNING by default) and drop the INFO decision lines."""
    from django.conf import settings

    dictConfig(settings.LOGGING)


# Connects the signals that carry the request id from the API into the tasks' log lines.
import workers.tracing  # noqa: E402, F401
