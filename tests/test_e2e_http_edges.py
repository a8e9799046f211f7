"""Hostile HTTP through the real server (gunicorn): chunked bodies, oversized bodies, and
requests gunicorn itself refuses. Raw sockets, because HTTP clients will not send most of
these."""

import contextlib
import json
import socket

import pytest

from core.models import Booking
from tests.conftest import bearer
from tests.factories import ShowFactory, UserFactory
from tests.harness.procs import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHAPE = {"code", "message", "details"}


def _exchange(base_url: str, raw: bytes) -> tuple[int, dict, bytes]:
    host, port = base_url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # The server may answer and close before it has read everything.
        with contextlib.suppress(OSError):
            sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return int(lines[0].split()[1]), headers, body


def _dechunk(data: bytes) -> bytes:
    body = b""
    while True:
        size, _, data = data.partition(b"\r\n")
        if int(size, 16) == 0:
            return body
        body, data = body + data[: int(size, 16)], data[int(size, 16) + 2 :]


def _post(path: str, token: str, body: bytes, *, chunked: bool) -> bytes:
    if chunked:
        step = 8192
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step]) for i in range(0, len(body), step)
        )
        framing, payload = b"Transfer-Encoding: chunked", chunks + b"0\r\n\r\n"
    else:
        framing, payload = b"Content-Length: %d" % len(body), body
    return (
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\nContent-Type: application/json\r\n%s\r\n\r\n"
        % (path.encode(), token.encode(), framing)
    ) + payload


def _json_error(status: int, headers: dict, body: bytes, expected: int, code: str) -> None:
    assert status == expected, body[:300]
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)
    assert set(error) == SHAPE
    assert error["code"] == code


def test_a_chunked_booking_is_read_like_any_other(live_stack):
    show = ShowFactory()
    body = json.dumps({"show": show.pk, "quantity": 2}).encode()
    status, _, answer = _exchange(
        live_stack.base_url, _post("/api/v1/bookings", bearer(UserFactory()), body, chunked=True)
    )
    assert status == 202, answer
    assert json.loads(answer)["quantity"] == 2
    # Decided before the test ends: the flush of the test database must not race the worker.
    wait_until(lambda: not Booking.objects.filter(status="pending").exists(), timeout=30, what="the decision")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_body_is_413_whatever_its_framing(live_stack, chunked):
    body = json.dumps({"show": 1, "seats": ["A1"], "padding": "x" * 200_000}).encode()  # limit: 64 KiB
    raw = _post("/api/v1/bookings", bearer(UserFactory()), body, chunked=chunked)
    _json_error(*_exchange(live_stack.base_url, raw), 413, "request_too_large")


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GET /api/v1/movies?q=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /api/v1/movies HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n",
            431,
            "request_header_fields_too_large",
        ),
        (
            b"POST /api/v1/bookings HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "bad_request",
        ),
        (b"GET /api/v1/movies HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n", 400, "bad_request"),
    ],
    ids=["uri-too-long", "header-too-large", "bad-chunk-size", "bad-http-version"],
)
def test_requests_the_server_cannot_parse_get_the_json_error_shape(live_stack, raw, status, code):
    _json_error(*_exchange(live_stack.base_url, raw), status, code)


@pytest.fixture(scope="module")
def strict_web(django_db_setup, django_db_blocker, tmp_path_factory):
    """A second gunicorn with low rate limits (the suite's own are out of reach)."""
    from tests.harness import service

    web, base_url = service.start_web(
        tmp_path_factory.mktemp("strict"), THROTTLE_ANON="5/min", THROTTLE_USER="5/min", THROTTLE_AUTH="3/min"
    )
    yield base_url
    web.stop()


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [("GET", "/api/v1/movies", 5), ("POST", "/api/v1/auth/login", 3)],
    ids=["anonymous", "login"],
)
def test_rotating_forwarded_addresses_does_not_escape_the_throttle(strict_web, method, path, limit):
    import httpx

    tries = 2 * limit + 2  # even split over two rate windows, at least 2 requests are refused
    with httpx.Client(base_url=strict_web, timeout=10) as client:
        responses = [
            client.request(
                method,
                path,
                json={"username": "nobody", "password": "guess"} if method == "POST" else None,
                headers={"X-Forwarded-For": f"10.0.{i}.1, 192.0.2.{i}", "X-Real-IP": f"10.1.0.{i}"},
            )
            for i in range(tries)
        ]
    refused = [r for r in responses if r.status_code == 429]
    assert len(refused) >= 2, [r.status_code for r in responses]
    assert all(r.headers["Retry-After"].isdigit() and r.json()["code"] == "throttled" for r in refused)
