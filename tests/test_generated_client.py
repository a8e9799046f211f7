"""Clients generated from the published schema by tools no one here wrote, as a client author
does it (README, "Writing a client"):

    swagger2openapi http://HOST/swagger.json -o openapi.json     # OpenAPI 3 (npm, pinned in tools/openapi)
    openapi-python-client generate --path openapi.json ...        # Python client (PyPI, pinned)
    openapi-typescript openapi.json -o api.d.ts && tsc --strict   # TypeScript types

The whole booking flow then runs through the generated Python client only, against gunicorn
and a Celery worker, with every answer also checked strictly against the schema
(tests/openapi_check.py). Skipped, saying so, only where node/npm is not installed.
"""

import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from tests import openapi_check
from tests.factories import PASSWORD, UserFactory
from tests.harness.procs import BIN, ROOT

pytestmark = pytest.mark.skipif(
    openapi_check.node_missing_reason() is not None, reason=openapi_check.node_missing_reason() or ""
)

NODE_BIN = openapi_check.TOOLS / "node_modules" / ".bin"
PACKAGE = "booking_client"
GENERATOR_CONFIG = f"project_name_override: booking-client\npackage_name_override: {PACKAGE}\n"


def run(command: list, *, cwd, timeout: int = 300) -> str:
    """Run a client author's tool; its output is returned (and shown when it fails)."""
    # The venv first: openapi-python-client formats what it generates with its ruff.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command[0]} failed:\n{output[-5000:]}"
    return output


def convert(swagger_url: str, directory) -> str:
    """swagger2openapi on the published schema, without --patch: it must convert as it is."""
    target = directory / "openapi.json"
    run([NODE_BIN / "swagger2openapi", swagger_url, "--outfile", target], cwd=directory)
    return str(target)


@pytest.fixture(scope="module")
def client_module(live_stack, tmp_path_factory):
    """The Python client that openapi-python-client generates from the live /swagger.json."""
    directory = tmp_path_factory.mktemp("generated-client")
    openapi = convert(f"{live_stack.base_url}/swagger.json", directory)
    (directory / "config.yaml").write_text(GENERATOR_CONFIG)
    output = run(
        [
            BIN / "openapi-python-client",
            "generate",
            "--path",
            openapi,
            "--config",
            directory / "config.yaml",
            "--meta",
            "none",
            "--output-path",
            directory / PACKAGE,
        ],
        cwd=directory,
    )
    # A schema the generator has to skip parts of is not one a client author can trust.
    assert "Warning" not in output, output
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(directory))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_whole_booking_flow_through_a_generated_python_client(live_stack, client_module):
    from booking_client import AuthenticatedClient, Client
    from booking_client.api.auth import auth_login, auth_me, auth_signup
    from booking_client.api.bookings import (
        bookings_cancel,
        bookings_create,
        bookings_list,
        bookings_read,
        users_bookings,
    )
    from booking_client.api.movies import movies_create, movies_list, movies_read, movies_shows, movies_update
    from booking_client.api.screens import screens_create, screens_read
    from booking_client.api.shows import shows_create, shows_list, shows_read, shows_seats, shows_update
    from booking_client.models import (
        BookingCreateInput,
        BookingOutput,
        BookingOutputFailureReason,
        BookingOutputStatus,
        Error,
        LoginInput,
        MovieInput,
        PatchedMovieInput,
        PatchedShowUpdateInput,
        PatchedShowUpdateInputStatus,
        ScreenInput,
        ShowInput,
        ShowOutputStatus,
        SignupInput,
    )

    base_url = f"{live_stack.base_url}/api/v1"
    # Every answer is also checked against the schema, strictly; an undocumented status raises.
    options = {
        "raise_on_unexpected_status": True,
        "timeout": httpx.Timeout(30),
        "httpx_args": {"event_hooks": {"response": [openapi_check.check_httpx]}},
    }

    def anonymous() -> Client:
        return Client(base_url=base_url, **options)

    def log_in(username: str, password: str) -> AuthenticatedClient:
        tokens = auth_login.sync(client=anonymous(), body=LoginInput(username=username, password=password))
        assert not isinstance(tokens, Error), tokens
        return AuthenticatedClient(base_url=base_url, token=tokens.access, **options)

    def error(response, status: int, code: str | None = None) -> Error:
        assert response.status_code == status, (response.status_code, response.content)
        assert isinstance(response.parsed, Error), response.parsed
        if code is not None:
            assert response.parsed.code == code, response.parsed
        return response.parsed

    def final(client, booking: BookingOutput) -> BookingOutput:
        """Poll until the booking is decided, waiting the Retry-After the server asks for."""
        deadline = time.monotonic() + 90
        while booking.status == BookingOutputStatus.PENDING:
            assert time.monotonic() < deadline, f"booking {booking.id} still pending"
            response = bookings_read.sync_detailed(booking.id, client=client)
            assert response.status_code == 200
            booking = response.parsed
            if booking.status == BookingOutputStatus.PENDING:
                time.sleep(min(float(response.headers["Retry-After"]), 1.0))
        return booking

    # Staff set up the catalogue through the same client.
    staff_user = UserFactory(is_staff=True)
    staff = log_in(staff_user.username, PASSWORD)
    movie = movies_create.sync(client=staff, body=MovieInput(title="Generated Client", duration_minutes=95))
    screen = screens_create.sync(client=staff, body=ScreenInput(name="Generated", rows=2, seats_per_row=4))
    starts_at = timezone.now() + timedelta(days=2)
    show = shows_create.sync(
        client=staff, body=ShowInput(movie=movie.id, screen=screen.id, starts_at=starts_at, price="12.50")
    )
    assert show.status == ShowOutputStatus.SCHEDULED
    assert show.available_seats == 8
    renamed = movies_update.sync(movie.id, client=staff, body=PatchedMovieInput(title="Generated Client II"))
    assert renamed.title == "Generated Client II"
    assert renamed.duration_minutes == 95

    # Sign up (a second time: 400 with field details), log in (a wrong password: 401).
    username, password = f"gen-{uuid.uuid4().hex[:8]}", "a-long-passphrase-42"
    signup = SignupInput(username=username, email=f"{username}@example.com", password=password)
    created = auth_signup.sync(client=anonymous(), body=signup)
    assert created.username == username
    assert "username" in error(auth_signup.sync_detailed(client=anonymous(), body=signup), 400).details.to_dict()
    wrong = LoginInput(username=username, password="not-the-password")
    error(auth_login.sync_detailed(client=anonymous(), body=wrong), 401)
    user = log_in(username, password)
    assert auth_me.sync(client=user).id == created.id
    error(bookings_list.sync_detailed(client=anonymous()), 401)

    # Browse: public reads.
    found = movies_list.sync(client=anonymous(), search="Generated Client II")
    assert [m.id for m in found.results] == [movie.id]
    assert movies_read.sync(movie.id, client=anonymous()).release_date is None
    assert [s.id for s in movies_shows.sync(movie.id, client=anonymous()).results] == [show.id]
    assert [s.id for s in shows_list.sync(client=anonymous(), movie=movie.id).results] == [show.id]
    assert shows_read.sync(show.id, client=anonymous()).screen.name == "Generated"
    assert screens_read.sync(screen.id, client=anonymous()).total_seats == 8
    error(movies_read.sync_detailed(10**15, client=anonymous()), 404)
    seat_map = shows_seats.sync(show.id, client=anonymous())
    assert seat_map.available == 8
    assert [s.label for s in seat_map.seats][:2] == ["A1", "A2"]

    # Book with an Idempotency-Key: 202 pending (failure_reason null), Location, Retry-After.
    key = str(uuid.uuid4())
    asked = BookingCreateInput(show=show.id, seats=["A1", "A2"])
    submitted = bookings_create.sync_detailed(client=user, body=asked, idempotency_key=key)
    assert submitted.status_code == 202
    pending = submitted.parsed
    assert pending.failure_reason is None
    assert pending.decided_at is None
    assert submitted.headers["Location"] == f"/api/v1/bookings/{pending.id}"
    assert int(submitted.headers["Retry-After"]) >= 1
    replay = bookings_create.sync(client=user, body=asked, idempotency_key=key)
    assert replay.id == pending.id
    other_body = BookingCreateInput(show=show.id, seats=["B1"])
    error(bookings_create.sync_detailed(client=user, body=other_body, idempotency_key=key), 409)

    confirmed = final(user, pending)
    assert confirmed.status == BookingOutputStatus.CONFIRMED, confirmed
    assert confirmed.seats == ["A1", "A2"]
    assert confirmed.failure_reason is None
    assert confirmed.confirmed_at is not None
    assert confirmed.decided_at is not None

    # Failures, each with its reason: a taken seat, more seats than are left.
    taken = final(user, bookings_create.sync(client=user, body=BookingCreateInput(show=show.id, seats=["A1"])))
    assert taken.status == BookingOutputStatus.FAILED
    assert taken.failure_reason == BookingOutputFailureReason.SEATS_UNAVAILABLE
    sold_out = final(user, bookings_create.sync(client=user, body=BookingCreateInput(show=show.id, quantity=7)))
    assert sold_out.status == BookingOutputStatus.FAILED
    assert sold_out.failure_reason == BookingOutputFailureReason.SOLD_OUT

    # Validation errors (400 with field details).
    both = BookingCreateInput(show=show.id, seats=["B1"], quantity=1)
    assert "non_field_errors" in error(bookings_create.sync_detailed(client=user, body=both), 400).details.to_dict()
    too_many = BookingCreateInput(show=show.id, quantity=11)
    assert "quantity" in error(bookings_create.sync_detailed(client=user, body=too_many), 400).details.to_dict()
    unknown_seat = BookingCreateInput(show=show.id, seats=["Z9"])
    error(bookings_create.sync_detailed(client=user, body=unknown_seat), 400)

    # Lists: the caller's bookings, newest first; another user's list is refused.
    mine = bookings_list.sync(client=user)
    assert [b.id for b in mine.results] == [sold_out.id, taken.id, confirmed.id]
    assert mine.count == 3
    assert mine.next_ is None
    assert mine.previous is None
    assert [b.id for b in users_bookings.sync(created.id, client=user).results] == [b.id for b in mine.results]
    stranger_user = UserFactory()
    stranger = log_in(stranger_user.username, PASSWORD)
    assert users_bookings.sync_detailed(created.id, client=stranger).status_code in (403, 404)
    error(bookings_read.sync_detailed(confirmed.id, client=stranger), 404)
    error(bookings_cancel.sync_detailed(confirmed.id, client=stranger), 404)

    # Cancel: the seats are free again; cancelling a failed booking is a 409.
    cancelled = bookings_cancel.sync(confirmed.id, client=user)
    assert cancelled.status == BookingOutputStatus.CANCELLED
    assert cancelled.cancelled_at is not None
    assert shows_seats.sync(show.id, client=anonymous()).available == 8
    error(bookings_cancel.sync_detailed(taken.id, client=user), 409)

    # A partial show update: a user may not, staff cancel the show with just its status.
    cancel_show = PatchedShowUpdateInput(status=PatchedShowUpdateInputStatus.CANCELLED)
    error(shows_update.sync_detailed(show.id, client=user, body=cancel_show), 403)
    updated = shows_update.sync(show.id, client=staff, body=cancel_show)
    assert updated.status == ShowOutputStatus.CANCELLED
    assert updated.price == "12.50"
    late = bookings_create.sync_detailed(client=user, body=BookingCreateInput(show=show.id, quantity=1))
    assert "show" in error(late, 400).details.to_dict()


TYPESCRIPT_CLIENT = """\
import type { components, paths } from "./api";

type Booking = components["schemas"]["BookingOutput"];
type NewBooking = paths["/bookings"]["post"]["requestBody"]["content"]["application/json"];
type ShowChange = NonNullable<paths["/shows/{show_id}"]["patch"]["requestBody"]>["content"]["application/json"];
type ApiError = components["schemas"]["Error"];

export async function book(baseUrl: string, token: string, body: NewBooking, key: string): Promise<Booking> {
  const response = await fetch(`${baseUrl}/bookings`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "Idempotency-Key": key },
    body: JSON.stringify(body),
  });
  if (response.status !== 202) {
    const error = (await response.json()) as ApiError;
    throw new Error(`${response.status} ${error.code}: ${error.message}`);
  }
  return (await response.json()) as Booking;
}

// Every field of a booking is always there: no undefined to handle, only null where documented.
export function describe(booking: Booking): string {
  const reason: string = booking.failure_reason ?? "none";
  const seats: string = booking.seats.join(",");
  return `${booking.id} ${booking.status} (${reason}) ${seats} x${booking.quantity} ${booking.created_at}`;
}

export const cancelShow: ShowChange = { status: "cancelled" };
export const byQuantity: NewBooking = { show: 1, quantity: 2 };

const pending: Booking = {
  id: "3fa85f64-5717-4562-b3fc-2c963f66afa6",
  status: "pending",
  show: 1,
  seats: [],
  quantity: 2,
  failure_reason: null,
  created_at: "2026-01-01T00:00:00Z",
  decided_at: null,
  confirmed_at: null,
  cancelled_at: null,
  queue_position: 0,
  tickets: { adult: 2, child: 0, senior: 0, student: 0 },
  seat_category: "standard",
  accessible: false,
  reference: null,
  total: null,
  currency: "EUR",
  lines: [],
  hold_expires_at: null,
  offer: false,
  refund: null,
};
// @ts-expect-error an unknown failure reason is not a booking's
export const bogus: Booking = { ...pending, failure_reason: "bogus" };
// @ts-expect-error every field of a booking is required
export const partial: Booking = { id: pending.id, status: "pending" };
// @ts-expect-error a show has no such status
export const badChange: ShowChange = { status: "postponed" };
"""


def test_typescript_types_generated_from_the_schema_type_check_a_client(tmp_path):
    openapi = tmp_path / "openapi.json"
    openapi.write_text(json.dumps(openapi_check.openapi3()))
    run([NODE_BIN / "openapi-typescript", openapi, "--output", tmp_path / "api.d.ts"], cwd=tmp_path)
    (tmp_path / "client.ts").write_text(TYPESCRIPT_CLIENT)
    run(
        [
            NODE_BIN / "tsc",
            "--noEmit",
            "--strict",
            "--exactOptionalPropertyTypes",
            "--target",
            "es2022",
            "--module",
            "es2022",
            "--moduleResolution",
            "bundler",
            "--lib",
            "es2022,dom",
            tmp_path / "client.ts",
        ],
        cwd=tmp_path,
    )


def test_the_readme_gives_the_commands_this_test_runs():
    readme = (ROOT / "README.md").read_text()
    for command in ("swagger2openapi", "openapi-python-client generate", "openapi-typescript"):
        assert command in readme, command
