"""Celery workers of the booking service. `celery -A workers worker` finds the app here."""

from workers.celery import app

__all__ = ["app"]
