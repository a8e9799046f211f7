"""WSGI entry point for gunicorn: `gunicorn booking_api.config.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "booking_api.config.settings")

django_application = get_wsgi_application()

from booking_api.middleware import ChunkedRequestBody  # noqa: E402 - needs the settings above

application = ChunkedRequestBody(django_application)
