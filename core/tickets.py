"""Ticket codes: one per sold seat, an opaque signed string, never a stored secret.

A code is base64url (no padding, 44 characters) of 33 bytes:

    version (1 byte) | ticket_id (16 bytes, BookingLine.ticket_id) | tag (16 bytes)
    tag = HMAC-SHA256(key, "ticket" | version | ticket_id), first 16 bytes

`ticket_id` is a random UUID drawn for the seat (never the row's id, so a code says nothing
about how many tickets were sold); the tag proves the service issued it. A forged, garbled
or truncated code is refused here, by arithmetic alone, before any database query: a
scanner hammering the door with made-up codes costs no PostgreSQL work. The comparison is
constant-time (hmac.compare_digest). 128 bits of tag are far beyond guessing at any rate a
door could try.

Keys: TICKET_SIGNING_KEY signs; TICKET_SIGNING_KEYS_PREVIOUS (oldest last) still verify,
so a key can be rotated without voiding the tickets already sold: add the old key to the
previous list, set a new one, and drop the old key once its shows have passed. The
version byte leaves room for another format later.

Pure: no database, no Django models; the keys are passed in or read from settings. The QR
code image is drawn by segno (pure Python, no image library needed).
"""

import base64
import binascii
import hashlib
import hmac
import io
import uuid
from collections.abc import Sequence

import segno
from django.conf import settings

from core.exceptions import NotFound

VERSION = 1
_TAG_BYTES = 16
_PAYLOAD_BYTES = 1 + 16 + _TAG_BYTES
# 33 bytes are 44 base64 characters without padding.
CODE_LENGTH = 44
_DOMAIN = b"ticket"


def _tag(key: bytes, version: int, ticket_id: uuid.UUID) -> bytes:
    message = _DOMAIN + bytes([version]) + ticket_id.bytes
    return hmac.new(key, message, hashlib.sha256).digest()[:_TAG_BYTES]


def _key_bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode()


def signing_key() -> bytes:
    return _key_bytes(settings.TICKET_SIGNING_KEY)


def verification_keys() -> list[bytes]:
    """The current key first, then the previous ones (rotation)."""
    return [signing_key(), *(_key_bytes(key) for key in settings.TICKET_SIGNING_KEYS_PREVIOUS)]


def ticket_code(ticket_id: uuid.UUID, *, key: bytes | None = None) -> str:
    """The code of a ticket, signed with `key` (default: TICKET_SIGNING_KEY)."""
    tag = _tag(key if key is not None else signing_key(), VERSION, ticket_id)
    payload = bytes([VERSION]) + ticket_id.bytes + tag
    return base64.urlsafe_b64encode(payload).decode("ascii")


def ticket_id_from_code(code: object, *, keys: Sequence[bytes] | None = None) -> uuid.UUID | None:
    """The ticket id a code carries, or None when the code is not one this service signed
    (with the current or a previous key): wrong type, length, alphabet, version or tag."""
    if not isinstance(code, str) or len(code) != CODE_LENGTH or not code.isascii():
        return None
    try:
        payload = base64.urlsafe_b64decode(code.encode("ascii"))
    except (binascii.Error, ValueError):
        return None
    # Only the canonical spelling: b64decode ignores nothing here (no padding, fixed
    # length), but a re-encode check also refuses the alternative alphabet ("+", "/").
    if len(payload) != _PAYLOAD_BYTES or base64.urlsafe_b64encode(payload).decode("ascii") != code:
        return None
    version, raw_id, tag = payload[0], payload[1:17], payload[17:]
    if version != VERSION:
        return None
    ticket_id = uuid.UUID(bytes=raw_id)
    # Every key is tried, whichever matches: the time taken does not say which key (or
    # how much of a tag) matched.
    valid = False
    for key in keys if keys is not None else verification_keys():
        valid |= hmac.compare_digest(_tag(key, version, ticket_id), tag)
    return ticket_id if valid else None


def ticket_qr_png(code: str, *, scale: int = 8) -> bytes:
    """A PNG of the QR code of `code` (error correction M, the quiet zone of 4 modules the
    standard asks for; segno raises the level when the symbol has room), `scale` pixels per
    module: about 300 pixels wide, sharp on paper and on a phone's screen."""
    buffer = io.BytesIO()
    segno.make_qr(code, error="m").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def ticket_qr(*, code: str) -> bytes:
    """The QR code PNG of a code this service signed. Raises NotFound (`ticket_not_found`)
    for any other string, without a query: the image says nothing the code does not."""
    if ticket_id_from_code(code) is None:
        raise NotFound("No such ticket.", code="ticket_not_found")
    return ticket_qr_png(code)
