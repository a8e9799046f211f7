"""What a secret must look like when DEBUG is off: not a value published in this repository
(`.env.example`, the README's examples) and not short enough to guess.

Used by the settings (secret key, JWT signing key, metrics token, ticket signing keys) and
by Flower's config (its basic-auth passwords), so that a production process refuses to start with one.
"""

# Values a copy of .env.example or of the README's commands would carry.
TEMPLATE_VALUES = frozenset(
    {
        "change-me",
        "change-me-too",
        "choose-a-password",
        "collectstatic-only",
        "secret",
        # settings.py's development default of TICKET_SIGNING_KEY (DEBUG only).
        "dev-insecure-ticket-signing-key-only-for-debug-runs",
    }
)
# Django's own rule for SECRET_KEY (`check --deploy`, security.W009).
SECRET_KEY_MIN_LENGTH = 50
TOKEN_MIN_LENGTH = 16
MIN_DISTINCT_CHARACTERS = 5


def weakness(value: str, *, min_length: int) -> str | None:
    """Why this secret must not be used in production, or None when it may."""
    lowered = value.strip().lower()
    if lowered in TEMPLATE_VALUES or "change-me" in lowered or lowered.startswith("django-insecure"):
        return "is a template value from the repository"
    if len(value) < min_length:
        return f"is shorter than {min_length} characters"
    if len(set(value)) < MIN_DISTINCT_CHARACTERS:
        return f"has fewer than {MIN_DISTINCT_CHARACTERS} different characters"
    return None
