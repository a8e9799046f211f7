"""The project's configuration and process entry points, readable by every layer.

settings (every value from the environment), the .env loader, the WSGI/ASGI applications,
gunicorn's and Flower's configuration and the Celery app. Loading the settings creates the
Celery app, so that every process configured by them publishes with it (core publishes by
task name through `celery.current_app`, never importing the workers).
"""

from booking_api.config.celery import app as celery_app

__all__ = ["celery_app"]
