"""Retention: the bookings of long-past shows are deleted, so that the booking tables stay the
size of the recent past (BOOKING_RETENTION_DAYS, documented in the README)."""

import logging
import time
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings

from core.models import BookedSeat, Booking, BookingLine, Payment, RefreshTokenFamily, Show, WaitlistEntry

logger = logging.getLogger("core.retention")


def bookings_purge_old(*, retention_days: int, batch_size: int, budget_seconds: float = 60) -> int:
    """Delete the bookings of shows that started more than `retention_days` ago, with their
    held seats and sold lines, `batch_size` bookings per transaction, until none is left or `budget_seconds`
    have passed (the next run goes on). 0 days keeps everything. Returns how many went.

    The waiting-list entries of those shows go too.

    Pending bookings are left alone (the recovery job fails them first), and rows another
    transaction holds are skipped, so concurrent runs and a late cancel never wait on each
    other. The shows themselves stay: a row each, and the catalogue's history.
    """
    if retention_days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=retention_days)
    deadline = time.monotonic() + budget_seconds
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            # Table names come from the models; every value is a parameter.
            cursor.execute(
                f"WITH doomed AS (SELECT b.id FROM {Booking._meta.db_table} b "  # noqa: S608  # nosec B608
                f"JOIN {Show._meta.db_table} s ON s.id = b.show_id WHERE s.starts_at < %s AND b.status <> %s "
                "LIMIT %s FOR UPDATE OF b SKIP LOCKED), "
                f"seats AS (DELETE FROM {BookedSeat._meta.db_table} WHERE booking_id IN (SELECT id FROM doomed)), "
                # Their payment records go with them (the provider keeps its own accounts).
                f"paid AS (DELETE FROM {Payment._meta.db_table} WHERE booking_id IN (SELECT id FROM doomed)), "
                f"lines AS (DELETE FROM {BookingLine._meta.db_table} WHERE booking_id IN (SELECT id FROM doomed)), "
                # An offer's waiting-list entry goes with its booking (its foreign key).
                f"offers AS (DELETE FROM {WaitlistEntry._meta.db_table} WHERE booking_id IN (SELECT id FROM doomed)) "
                f"DELETE FROM {Booking._meta.db_table} WHERE id IN (SELECT id FROM doomed)",
                [cutoff, str(Booking.Status.PENDING), batch_size],
            )
            batch = cursor.rowcount
        deleted += batch
        if batch < batch_size or time.monotonic() > deadline:
            break
    # The entries that never got an offer: the show is long over.
    WaitlistEntry.objects.filter(show__starts_at__lt=cutoff, booking__isnull=True).delete()
    if deleted:
        logger.info("old bookings purged", extra={"count": deleted, "older_than_days": retention_days})
    return deleted


def refresh_families_purge_expired() -> int:
    """Delete the refresh token families whose newest token has expired (one row per login
    otherwise stays for ever). A family's older tokens expired before its newest, so none
    of them can be used: a deleted family is never missed. Returns how many went."""
    cutoff = timezone.now() - api_settings.REFRESH_TOKEN_LIFETIME
    # The newest token was issued at the last rotation or, never rotated, before the family
    # was created (on the login token's first use).
    expired = Q(rotated_at__lt=cutoff) | Q(rotated_at__isnull=True, created_at__lt=cutoff)
    deleted, _ = RefreshTokenFamily.objects.filter(expired).delete()
    return deleted
