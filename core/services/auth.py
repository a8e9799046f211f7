"""Refresh tokens: rotation with one winner, reuse detection, and revocation.

A refresh token works once: refreshing it blacklists it and issues the next token of its
family (core.models.RefreshTokenFamily), which carries the family in its "fam" claim. Every
rotation and revocation of a family runs in one transaction that first locks the family's
row, so of two refreshes of one token exactly one wins. The other then finds the token
already rotated, which is also how a copied token shows itself, and revokes the family: the
thief's tokens and the owner's alike, since the two cannot be told apart.

Tokens also carry a fingerprint of the password hash (simplejwt's CHECK_REVOKE_TOKEN claim),
checked by every authenticated request and here; changing the password (core/signals.py)
revokes the user's refresh tokens as well.
"""

import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

from core.exceptions import NotAuthenticated
from core.models import RefreshTokenFamily

logger = logging.getLogger("core.auth")

User = get_user_model()

FAMILY_CLAIM = "fam"


class _PresentedRefreshToken(Token):
    """A refresh token as presented: signature, expiry, id and type are checked on decoding.
    Whether it was used already is checked under its family's lock, where a used token (a
    copy: revoke the family) can be told from a revoked one."""

    token_type = RefreshToken.token_type
    lifetime = RefreshToken.lifetime


def token_refresh(*, refresh: str) -> dict[str, str]:
    """Rotate a refresh token: blacklist it and return a new access and refresh pair of its
    family. Raises NotAuthenticated for an invalid, expired, used or revoked token and for a
    user who is gone, inactive or has changed the password since; presenting a used token
    revokes its family first."""
    token = _presented(refresh)
    user = _active_user(token)
    with transaction.atomic():
        family = _family_locked(token, user=user)
        if family is not None and _usable(family, token):
            return _rotate(family, token, user=user)
    # Raised after the block, so that a revocation for reuse is committed.
    raise _refused()


def token_logout(*, refresh: str) -> None:
    """Blacklist a refresh token and revoke its family. Raises NotAuthenticated like
    token_refresh, and revokes the family of a used token the same way."""
    token = _presented(refresh)
    user = _active_user(token)
    with transaction.atomic():
        family = _family_locked(token, user=user)
        if family is not None and _usable(family, token):
            _family_revoke(family, reason=RefreshTokenFamily.RevokedReason.LOGOUT)
            return
    raise _refused()


@transaction.atomic
def user_tokens_revoke(*, user_id: int, reason: str) -> None:
    """Revoke every refresh token family of a user and blacklist all their refresh tokens."""
    now = timezone.now()
    # Families first: the update waits for a rotation in progress (which holds its family's
    # row) and then revokes the family it extended. A family started concurrently may be
    # missed, but its tokens carry the old password's fingerprint and are refused anyway.
    RefreshTokenFamily.objects.filter(user_id=user_id, revoked_at__isnull=True).update(
        revoked_at=now, revoked_reason=reason
    )
    _blacklist(OutstandingToken.objects.filter(user_id=user_id, expires_at__gt=now, blacklistedtoken__isnull=True))


def _refused() -> NotAuthenticated:
    return NotAuthenticated("Token is blacklisted.", code="token_not_valid")


def _presented(raw: str) -> _PresentedRefreshToken:
    try:
        return _PresentedRefreshToken(raw)  # type: ignore[arg-type]  # simplejwt's stubs take a Token, it takes the string
    except TokenError as exc:
        raise NotAuthenticated(str(exc.args[0]), code="token_not_valid") from exc


def _active_user(token: Token):
    user_id = token.get(api_settings.USER_ID_CLAIM)
    user = User.objects.filter(**{api_settings.USER_ID_FIELD: user_id}).first() if user_id is not None else None
    if user is None or not api_settings.USER_AUTHENTICATION_RULE(user):
        raise NotAuthenticated("No active account found for the given token.", code="no_active_account")
    if api_settings.CHECK_REVOKE_TOKEN and token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(
        user.password
    ):
        raise NotAuthenticated("The user's password has been changed.", code="password_changed")
    return user


def _family_locked(token: Token, *, user) -> RefreshTokenFamily | None:
    """The token's family, its row locked until the end of the transaction; None when it is
    gone (its user was deleted)."""
    jti = token[api_settings.JTI_CLAIM]
    root = token.get(FAMILY_CLAIM, jti)
    if root == jti:
        # A token from login starts its family on its first use. Of two concurrent first
        # uses, one inserts the row; the other's insert waits for that transaction and then
        # does nothing, and its lock below returns the row as the first one left it.
        RefreshTokenFamily.objects.bulk_create(
            [RefreshTokenFamily(root_jti=jti, current_jti=jti, user=user)], ignore_conflicts=True
        )
    return RefreshTokenFamily.objects.select_for_update().filter(root_jti=root).first()


def _usable(family: RefreshTokenFamily | None, token: Token) -> bool:
    """Whether the token may be used once more. A used token revokes its family."""
    jti = token[api_settings.JTI_CLAIM]
    if family is None or family.revoked_at is not None:
        return False
    if family.current_jti != jti:
        logger.warning(
            "refresh token reused: family %s of user %s revoked", family.root_jti, family.user_id, extra={"jti": jti}
        )
        _family_revoke(family, reason=RefreshTokenFamily.RevokedReason.REUSE)
        return False
    # Blacklisted another way (the admin, or logout before families existed).
    return not BlacklistedToken.objects.filter(token__jti=jti).exists()


def _rotate(family: RefreshTokenFamily, token: _PresentedRefreshToken, *, user) -> dict[str, str]:
    _blacklist(_outstanding(token, user=user))
    successor = RefreshToken()
    for claim, value in token.payload.items():
        if claim not in RefreshToken.no_copy_claims:
            successor[claim] = value
    successor[FAMILY_CLAIM] = family.root_jti
    encoded = str(successor)
    OutstandingToken.objects.create(
        user=user,
        jti=successor[api_settings.JTI_CLAIM],
        token=encoded,
        created_at=successor.current_time,
        expires_at=datetime_from_epoch(successor["exp"]),
    )
    family.current_jti = successor[api_settings.JTI_CLAIM]
    family.rotated_at = timezone.now()
    family.save(update_fields=["current_jti", "rotated_at"])
    return {"access": str(successor.access_token), "refresh": encoded}


def _family_revoke(family: RefreshTokenFamily, *, reason: str) -> None:
    family.revoked_at = timezone.now()
    family.revoked_reason = reason
    family.save(update_fields=["revoked_at", "revoked_reason"])
    # Only the newest token of a family is still usable; its predecessors are blacklisted.
    _blacklist(OutstandingToken.objects.filter(jti=family.current_jti))


def _outstanding(token: _PresentedRefreshToken, *, user) -> QuerySet:
    """The token's OutstandingToken row (every token issued by login or rotation has one)."""
    OutstandingToken.objects.get_or_create(
        jti=token[api_settings.JTI_CLAIM],
        defaults={
            "user": user,
            "token": token.token,  # type: ignore[misc]  # set: the token was presented, not made
            "created_at": datetime_from_epoch(token["iat"]) if "iat" in token else None,
            "expires_at": datetime_from_epoch(token["exp"]),
        },
    )
    return OutstandingToken.objects.filter(jti=token[api_settings.JTI_CLAIM])


def _blacklist(outstanding: QuerySet) -> None:
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=pk) for pk in outstanding.values_list("pk", flat=True)], ignore_conflicts=True
    )
