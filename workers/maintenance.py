"""Periodic housekeeping scheduled by beat (CELERY_BEAT_SCHEDULE): thin tasks over core
services and simplejwt's own command."""

from celery import shared_task
from django.conf import settings
from django.core.management import call_command

from core.services.holds import holds_expire_due
from core.services.retention import bookings_purge_old, refresh_families_purge_expired


@shared_task(name="maintenance.expire_holds", ignore_result=True)
def expire_holds() -> int:
    """Expire the held bookings past their deadline (core.services.holds); returns how many."""
    return holds_expire_due()


@shared_task(name="maintenance.purge_old_bookings", ignore_result=True)
def purge_old_bookings() -> int:
    """Delete the bookings of shows past BOOKING_RETENTION_DAYS; returns how many went."""
    return bookings_purge_old(
        retention_days=settings.BOOKING_RETENTION_DAYS, batch_size=settings.BOOKING_RETENTION_BATCH
    )


@shared_task(name="maintenance.flush_expired_tokens", ignore_result=True)
def flush_expired_tokens() -> None:
    """Delete expired refresh tokens, their blacklist entries and their families."""
    call_command("flushexpiredtokens", verbosity=0)
    refresh_families_purge_expired()
