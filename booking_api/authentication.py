"""JWT authentication of every API request: simplejwt's, with the user row read by one
prepared statement instead of a queryset.

Each authenticated request loads its user (an inactive or deleted user's token stops
working at once, and CHECK_REVOKE_TOKEN compares the token's password fingerprint with the
stored password). Building that query with the ORM cost more CPU than PostgreSQL spends
running it; the statement here is built once per process and the row is turned into a
user by the ORM's own `from_db`, so the user is the model instance the ORM would return.
Every check of simplejwt's get_user is kept, in its order, with its messages and codes.
"""

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

_statement: tuple[str, list[str]] | None = None


def _user_statement() -> tuple[str, list[str]]:
    global _statement
    if _statement is None:
        model = get_user_model()
        columns = [field.column for field in model._meta.concrete_fields]
        id_column = model._meta.get_field(api_settings.USER_ID_FIELD).column
        quote = connection.ops.quote_name
        _statement = (
            f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(model._meta.db_table)} "  # noqa: S608  # nosec B608
            f"WHERE {quote(id_column)} = %s",
            [field.attname for field in model._meta.concrete_fields],
        )
    return _statement


def load_user(user_id):
    """The user whose USER_ID_FIELD is `user_id`, or None."""
    sql, attnames = _user_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id])
        row = cursor.fetchone()
    return None if row is None else get_user_model().from_db(connection.alias, attnames, row)


class JWTAuthentication(authentication.JWTAuthentication):
    def get_user(self, validated_token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as e:
            raise InvalidToken(_("Token contained no recognizable user identification")) from e

        user = load_user(user_id)
        if user is None:
            raise AuthenticationFailed(_("User not found"), code="user_not_found")

        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")

        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(_("The user's password has been changed."), code="password_changed")

        return user
