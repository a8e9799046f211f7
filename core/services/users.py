"""Writes of user accounts."""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from core.exceptions import ValidationFailed

User = get_user_model()


@transaction.atomic
def user_signup(*, username: str, email: str, password: str):
    """Create an active, non-staff user. Raises ValidationFailed for a taken username or
    email (compared case-insensitively) and for a password Django's validators refuse."""
    errors: dict[str, list[str]] = {}
    if User.objects.filter(username__iexact=username).exists():
        errors["username"] = ["A user with that username already exists."]
    if User.objects.filter(email__iexact=email).exists():
        errors["email"] = ["A user with that email already exists."]
    try:
        validate_password(password, user=User(username=username, email=email))
    except DjangoValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ValidationFailed("The account could not be created.", details=errors)
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, email=email, password=password)
    except IntegrityError as exc:
        # Two signups for one username raced; the database's unique index decided.
        raise ValidationFailed(
            "The account could not be created.", details={"username": ["A user with that username already exists."]}
        ) from exc
