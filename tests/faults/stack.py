"""The booking service on private servers, with clients that behave as the contract asks.

gunicorn, Celery workers and celery beat run as real subprocesses against a private
PostgreSQL cluster and a private Redis (see tests/harness/servers.py), with short lock, grace and sweep
timings so that every recovery path runs within seconds.
"""

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
from rest_framework_simplejwt.tokens import AccessToken

from tests.harness import procs, service
from tests.harness.polling import retry_after_seconds
from tests.harness.procs import children
from tests.harness.requests import selling_fields
from tests.harness.servers import PrivatePostgres, PrivateRedis

FAST_TIMINGS = {
    "BOOKING_LOCK_TIMEOUT": 3,
    "BOOKING_RECOVERY_GRACE_SECONDS": 2,
    "BOOKING_RECOVERY_INTERVAL_SECONDS": 1,
    "DB_CONNECT_TIMEOUT": 2,
    "REDIS_SOCKET_TIMEOUT": 1,
}
ERROR_SHAPE = {"code", "message", "details"}


class FaultStack:
    """web (gunicorn), named Celery workers and beat on a private cluster and Redis."""

    def __init__(self, *, pg: PrivatePostgres, redis: PrivateRedis, log_dir: Path, bouncer=None, **env):
        self.pg, self.redis, self.log_dir, self.bouncer = pg, redis, log_dir, bouncer
        self.env = {
            **FAST_TIMINGS,
            "DATABASE_URL": pg.url(),
            "REDIS_URL": redis.url(),
            "CELERY_BROKER_URL": redis.url(),
            **env,
        }
        self.web: procs.Proc | None = None
        self.base_url = ""
        self.workers: dict[str, procs.Proc] = {}
        self.beat: procs.Proc | None = None

    def start(
        self,
        *,
        workers=("w1", "w2"),
        concurrency: int = 1,
        beat: bool = True,
        web_workers: int = 2,
        web_env: dict | None = None,
    ) -> "FaultStack":
        self.web, self.base_url = service.start_web(
            self.log_dir, workers=web_workers, **{**self.env, **(web_env or {})}
        )
        # The fake payment provider's workers deliver its webhooks to this web process.
        self.env.setdefault("PAYMENT_FAKE_WEBHOOK_URL", f"{self.base_url}/api/v1/payments/webhook")
        for name in workers:
            self.start_worker(name, concurrency=concurrency)
        if beat:
            self.beat = service.start_beat(self.log_dir, **self.env)
        return self

    def start_worker(self, name: str, *, concurrency: int = 1) -> procs.Proc:
        self.workers[name] = service.start_worker(self.log_dir, concurrency=concurrency, name=name, **self.env)
        return self.workers[name]

    def pool_pids(self, name: str) -> list[int]:
        """The prefork pool processes of a worker (the children of its main process)."""
        return children(self.workers[name].popen.pid)

    def in_transaction(self) -> tuple[int, set[int]]:
        """(the port the service's processes reach the database on, the local ports of their
        connections that have a transaction open): PostgreSQL's view, or PgBouncer's when
        the service runs behind one (PostgreSQL then sees PgBouncer's connections only)."""
        if self.bouncer is not None:
            return self.bouncer.port, self.bouncer.clients_in_transaction()
        with self.pg.connect() as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT client_port FROM pg_stat_activity WHERE backend_type = 'client backend'"
                " AND xact_start IS NOT NULL AND pid <> pg_backend_pid()"
            )
            return self.pg.port, {port for (port,) in cursor.fetchall()}

    def procs(self) -> list[procs.Proc]:
        return [p for p in [self.web, *self.workers.values(), self.beat] if p is not None]

    def stop(self) -> None:
        for proc in self.procs():
            proc.stop(timeout=10)

    def logs(self, chars: int = 3000) -> str:
        parts = [f"--- {p.name}\n{p.log()[-chars:]}" for p in self.procs()]
        return "\n".join([*parts, f"--- postgres\n{self.pg.log()[-chars:]}"])

    # ---- data --------------------------------------------------------------------------------

    def tokens(self, count: int, *, staff: bool = False) -> list[str]:
        """`count` new users, written in SQL, with real access tokens signed like the API's."""
        prefix = uuid.uuid4().hex[:8]
        with self.pg.connect() as conn, conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,"
                " is_active, date_joined) SELECT '!', false, %s || g, '', '', %s || g || '@example.com', %s, true,"
                " now() FROM generate_series(1, %s) AS g RETURNING id",
                [f"{prefix}-", f"{prefix}-", staff, count],
            )
            ids = [row[0] for row in cursor.fetchall()]
        # The password is the one inserted above: tokens carry its fingerprint (CHECK_REVOKE_TOKEN).
        return [str(AccessToken.for_user(SimpleNamespace(id=pk, is_active=True, password="!"))) for pk in ids]

    def create_show(self, *, rows: int, seats_per_row: int, payment_required: bool = False) -> dict:
        """A movie, a screen and a show tomorrow, created over HTTP by a staff user. The screen
        sells like a cinema's (see seat_categories) and the show has a child price."""
        (token,) = self.tokens(1, staff=True)
        name = uuid.uuid4().hex[:10]
        with httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
            movie = _ok(c.post("/api/v1/movies", json={"title": f"Movie {name}", "duration_minutes": 100}))
            marks = seat_categories(rows, seats_per_row)
            screen = _ok(
                c.post("/api/v1/screens", json={"name": name, "rows": rows, "seats_per_row": seats_per_row, **marks})
            )
            starts_at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
            show = {
                "movie": movie["id"],
                "screen": screen["id"],
                "starts_at": starts_at,
                "price": "9.50",
                "prices": [{"ticket_type": "child", "seat_category": "standard", "amount": "6.00"}],
                "payment_required": payment_required,
            }
            return _ok(c.post("/api/v1/shows", json=show))


def _ok(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def seat_categories(rows: int, seats_per_row: int) -> dict:
    """A cinema's marks: the back row premium, a wheelchair space with its companion seat at
    the front (on screens large enough to keep most seats standard)."""
    if rows < 3 or seats_per_row < 4:
        return {}
    return {"premium_rows": [chr(ord("A") + rows - 1)], "accessible_seats": ["A1"], "companion_seats": ["A2"]}


def quantity_requests(show_ids: list[int], count: int, *, seed: int, max_quantity: int = 2) -> list[dict]:
    """Best-available requests, priced and categorised like a box office's: mostly standard
    seats, some premium, a few wheelchair requests, and ticket types on about half."""
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        quantity = rng.randint(1, max_quantity)
        request = {"show": rng.choice(show_ids), "quantity": quantity}
        request.update(selling_fields(rng, quantity, accessible=0.04, premium=0.16))
        requests.append(request)
    return requests


class Clients:
    """Booking clients as the contract asks them to behave.

    Every request carries its own Idempotency-Key and is retried with that key on a 503 or a
    network error (after Retry-After, capped) until its deadline. Every 202 is recorded; a
    response that is neither a 202 nor a well-formed 503 is a problem, and so is a request
    that gets no answer within `timeout` seconds (a hang).
    """

    def __init__(
        self, base_url: str, tokens: list[str], *, timeout: float = 10.0, impatient: bool = False, concurrency: int = 16
    ):
        # An impatient client gives up on an attempt after `timeout` (doubled at each retry)
        # and retries it with the same key: then a timeout is not a hang but the point, a
        # request racing its own retry.
        self.base_url, self.tokens, self.timeout, self.impatient = base_url, tokens, timeout, impatient
        self.accepted: dict[str, dict] = {}  # booking id -> request body
        self.by_key: dict[str, str] = {}  # idempotency key -> booking id
        self.timings: dict[str, tuple[float, float]] = {}  # id -> (first submission, 202 received)
        self.statuses: Counter = Counter()
        self.problems: list[str] = []
        self.max_latency = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="client")

    def _client(self) -> httpx.Client:
        if not hasattr(self._local, "client"):
            self._local.client = httpx.Client(base_url=self.base_url, timeout=self.timeout)
        return self._local.client

    def book(self, index: int, body: dict, *, within: float = 60.0, key: str | None = None) -> str | None:
        """Submit until accepted (the booking id) or `within` seconds passed (None)."""
        return self._book(index, body, deadline=time.monotonic() + within, key=key)

    def _book(self, index: int, body: dict, *, deadline: float, key: str | None = None) -> str | None:
        key = key or uuid.uuid4().hex
        headers = {"Authorization": f"Bearer {self.tokens[index % len(self.tokens)]}", "Idempotency-Key": key}
        first_submitted = time.monotonic()
        timeout = self.timeout
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                response = self._client().post("/api/v1/bookings", json=body, headers=headers, timeout=timeout)
            except httpx.TimeoutException:
                self._note("timeout", None if self.impatient else f"no answer within {timeout}s")
                timeout = min(timeout * 2, 10.0) if self.impatient else timeout
                continue
            except httpx.TransportError:
                # A killed or restarted process drops connections: retry with the same key.
                self._note("network", None, latency=time.monotonic() - started)
                time.sleep(0.2)
                continue
            self._note(response.status_code, self._problem(response), latency=time.monotonic() - started)
            if response.status_code == 202:
                booking_id = response.json()["id"]
                with self._lock:
                    self.accepted[booking_id] = body
                    self.by_key[key] = booking_id
                    self.timings[booking_id] = (first_submitted, time.monotonic())
                return booking_id
            if response.status_code not in (429, 503):
                return None
            # 503: a dependency is down or busy; 429: too many of this user's bookings are
            # pending. Either way the contract says wait Retry-After and retry.
            time.sleep(min(retry_after_seconds(response.headers), 0.3))
        return None

    def book_all(self, requests: list[dict], *, within: float = 60.0) -> list[str | None]:
        """Submit every request (`concurrency` at a time); all give up `within` seconds from now."""
        deadline = time.monotonic() + within
        return list(self._pool.map(lambda pair: self._book(*pair, deadline=deadline), enumerate(requests)))

    def book_all_in_background(self, requests: list[dict], *, within: float = 60.0, key: str | None = None) -> Future:
        """book_all in a thread of its own; with `key`, a single request with that Idempotency-Key."""
        if key is not None:
            (body,) = requests
            return self._pool.submit(self.book, 0, body, within=within, key=key)
        # A thread of its own: the pool's threads are busy with the requests themselves.
        return ThreadPoolExecutor(max_workers=1).submit(self.book_all, requests, within=within)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    @staticmethod
    def _problem(response: httpx.Response) -> str | None:
        if response.status_code == 202:
            return None
        text = response.text[:300]
        if response.status_code == 429:
            too_many = response.json().get("code") == "too_many_pending" and "Retry-After" in response.headers
            return None if too_many else f"429 that is not too_many_pending with Retry-After: {text}"
        if response.status_code != 503:
            return f"unexpected {response.status_code}: {text}"
        if not response.headers.get("content-type", "").startswith("application/json"):
            return f"503 that is not JSON: {text}"
        body = response.json()
        # `busy`: a healthy database made the request give up a wait (a lock timeout);
        # `overloaded`: admission control answered it at once (booking_api/admission.py).
        if (
            set(body) != ERROR_SHAPE
            or body["code"] not in ("service_unavailable", "busy", "overloaded")
            or "Retry-After" not in response.headers
        ):
            return f"503 without the error shape or Retry-After: {text}"
        if "Traceback" in response.text:
            return f"stack trace in a response: {text}"
        return None

    def _note(self, status, problem: str | None, *, latency: float = 0.0) -> None:
        with self._lock:
            self.statuses[status] += 1
            self.max_latency = max(self.max_latency, latency)
            if problem:
                self.problems.append(problem)
