"""Ticket codes (core/tickets.py): signed, opaque, refused when forged before any query."""

import base64
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import tickets
from core.exceptions import NotFound

KEY = b"k" * 50
OLD_KEY = b"o" * 50


def test_a_code_carries_its_ticket_id_and_nothing_else():
    ticket_id = uuid.uuid4()
    code = tickets.ticket_code(ticket_id, key=KEY)
    assert len(code) == tickets.CODE_LENGTH == 44
    assert set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert tickets.ticket_id_from_code(code, keys=[KEY]) == ticket_id
    # Deterministic: the code is computed, never stored.
    assert tickets.ticket_code(ticket_id, key=KEY) == code


def test_another_key_or_a_flipped_bit_or_another_version_is_refused():
    ticket_id = uuid.uuid4()
    code = tickets.ticket_code(ticket_id, key=KEY)
    assert tickets.ticket_id_from_code(code, keys=[b"x" * 50]) is None
    raw = bytearray(base64.urlsafe_b64decode(code))
    for position in (0, 1, 16, 17, 32):  # version, id, tag
        forged = bytearray(raw)
        forged[position] ^= 0x01
        assert tickets.ticket_id_from_code(base64.urlsafe_b64encode(bytes(forged)).decode(), keys=[KEY]) is None
    # Another ticket id with the tag of this one.
    swapped = bytes(raw[:1]) + uuid.uuid4().bytes + bytes(raw[17:])
    assert tickets.ticket_id_from_code(base64.urlsafe_b64encode(swapped).decode(), keys=[KEY]) is None


@pytest.mark.parametrize(
    "garbage",
    [None, 42, "", "abc", "A" * 44, "A" * 43 + "=", "é" * 44, "A" * 45, "+" * 44, "/" * 44, "\x00" * 44, ["x"]],
)
def test_garbage_is_refused(garbage):
    assert tickets.ticket_id_from_code(garbage, keys=[KEY]) is None


def test_the_standard_alphabet_spelling_of_a_code_is_refused():
    # Find a code with a URL-safe character in it, respelt with the standard alphabet.
    for _ in range(200):
        code = tickets.ticket_code(uuid.uuid4(), key=KEY)
        if "-" in code or "_" in code:
            break
    respelt = code.replace("-", "+").replace("_", "/")
    assert tickets.ticket_id_from_code(code, keys=[KEY]) is not None
    assert tickets.ticket_id_from_code(respelt, keys=[KEY]) is None


def test_previous_keys_still_verify_after_a_rotation(settings):
    ticket_id = uuid.uuid4()
    old_code = tickets.ticket_code(ticket_id, key=OLD_KEY)
    settings.TICKET_SIGNING_KEY = KEY.decode()
    settings.TICKET_SIGNING_KEYS_PREVIOUS = []
    assert tickets.ticket_id_from_code(old_code) is None
    settings.TICKET_SIGNING_KEYS_PREVIOUS = [OLD_KEY.decode()]
    assert tickets.ticket_id_from_code(old_code) == ticket_id
    # New codes are signed with the current key only.
    assert tickets.ticket_code(ticket_id) == tickets.ticket_code(ticket_id, key=KEY) != old_code


def test_the_qr_code_is_a_png_of_the_code():
    code = tickets.ticket_code(uuid.uuid4())
    png = tickets.ticket_qr(code=code)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) < 5000


@pytest.mark.django_db
def test_a_forged_code_is_refused_without_a_query():
    with CaptureQueriesContext(connection) as queries, pytest.raises(NotFound) as refused:
        tickets.ticket_qr(code=tickets.ticket_code(uuid.uuid4(), key=b"not-our-key" * 5))
    assert refused.value.code == "ticket_not_found"
    assert len(queries) == 0
