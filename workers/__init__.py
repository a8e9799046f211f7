"""Celery tasks of the booking service: take ids, call core, decide about retrying.

`celery -A workers worker` finds the app here; it is configured in booking_api/config/celery.py.
"""

from booking_api.config.celery import app

__all__ = ["app"]
