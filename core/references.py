"""Short booking references: 8 characters a person can read out over a phone.

The alphabet leaves out characters that are easily mistaken for one another (0/O, 1/I/L),
which leaves 31: about 8.5e11 references, drawn at random with `secrets`. Uniqueness is the
database's job (a unique constraint); a collision is retried with a fresh draw.
"""

import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8
PATTERN = re.compile(rf"^[{ALPHABET}]{{{LENGTH}}}$")


def new_reference() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(text: str) -> str | None:
    """A reference as typed by a person (any case, spaces or dashes), or None if it cannot be one."""
    cleaned = re.sub(r"[\s-]", "", text or "").upper()
    return cleaned if PATTERN.match(cleaned) else None
