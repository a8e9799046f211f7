"""Refresh token families (core/services/auth.py)."""

from django.conf import settings
from django.db import models


class RefreshTokenFamily(models.Model):
    """The chain of refresh tokens that one login grows: each refresh rotates to the next.

    Only the newest token of a family (`current_jti`) may be refreshed. Any older one has
    been used already, so whoever presents it holds a copy: the whole family is revoked,
    the thief's tokens and the owner's alike (the owner logs in again). A family is also
    revoked by logout and by a password change. The row is the lock that serialises every
    rotation and revocation of the family (core/services/auth.py). The tokens themselves
    live in simplejwt's OutstandingToken and BlacklistedToken tables.
    """

    class RevokedReason(models.TextChoices):
        REUSE = "reuse"
        LOGOUT = "logout"
        PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a password

    # The jti of the family's first token (from login); later tokens carry it in "fam".
    root_jti = models.CharField(primary_key=True, max_length=255)
    # Deleting a user deletes their families (their tokens are refused anyway).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    current_jti = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, choices=RevokedReason.choices, blank=True)

    class Meta:
        verbose_name_plural = "refresh token families"

    def __str__(self) -> str:
        return f"{self.root_jti} (user {self.user_id})"
