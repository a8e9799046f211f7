"""ASGI entry point (not used by the Procfile; kept for ASGI servers)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "booking_api.config.settings")

application = get_asgi_application()
