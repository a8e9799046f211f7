"""The Celery app, configured from Django settings (the CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "booking_api.settings")

app = Celery("booking")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.imports = ("workers.tasks",)

# Connects the signals that carry the request id from the API into the tasks' log lines.
import workers.tracing  # noqa: E402, F401
