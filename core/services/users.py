"""Writes of user accounts."""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from core.exceptions import ValidationFailed

User = get_user_model()


# The answer to every refused signup. It never says that an email address has an account:
# who is a customer is the customer's business, so a taken email gets no field detail of its
# own, only this message, which also tells the address's owner what to do.
SIGNUP_REFUSED = "The account could not be created with these details. If you already have an account, log in."


@transaction.atomic
def user_signup(*, username: str, email: str, password: str):
    """Create an active, non-staff user. Raises ValidationFailed for a taken username or
    email (compared case-insensitively) and for a password Django's validators refuse.

    Usernames are public handles (a booking's owner is shown by username), so a taken one
    is named in the details; a taken email is not (see SIGNUP_REFUSED)."""
    errors: dict[str, list[str]] = {}
    if User.objects.filter(username__iexact=username).exists():
        errors["username"] = ["A user with that username already exists."]
    email_taken = User.objects.filter(email__iexact=email).exists()
    try:
        validate_password(password, user=User(username=username, email=email))
    except DjangoValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors or email_taken:
        raise ValidationFailed(SIGNUP_REFUSED, details=errors)
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, email=email, password=password)
    except IntegrityError as exc:
        # Two signups for one username or one email raced; a unique index decided. Which
        # one is not said, for the same reason.
        raise ValidationFailed(SIGNUP_REFUSED) from exc
