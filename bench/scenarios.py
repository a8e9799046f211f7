"""The scenarios: baselines, booking throughput, reads, the flash sale, many shows, the
backlog drain and the soak. Each returns a dict of figures for the report and appends any
invariant violation to `ctx.violations`."""

import asyncio
import multiprocessing
import random
import statistics
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import psycopg2
from django.db import connection

from bench import data
from bench.load import (
    Client,
    Recorder,
    closed_loop,
    is_error,
    latency_summary,
    open_loop_worker,
    percentile,
    say,
)
from bench.stack import Config, Sampler, Stack
from bench.tasks import NOOP_COUNTER
from core.redis import redis_client
from examples.book_tickets import FINAL, retry_after_seconds
from tests.harness import invariants

BOOKINGS = "/api/v1/bookings"


@dataclass
class Sizes:
    """How big each scenario is; quick mode is a smoke test of the same code paths."""

    users: int
    flash_rows: int
    flash_seats_per_row: int
    many_shows: int
    many_rows: int
    many_seats_per_row: int
    backlog: int
    noop_tasks: int
    seconds: float  # per kind of HTTP request, over all rounds
    window: float  # one round of one kind
    warmup: float
    concurrency: int
    pg_threads: int
    overload_multipliers: tuple = (1, 2, 5, 10)
    overload_step_seconds: float = 8
    overload_connections: int = 400
    overload_processes: int = 2
    window_warmup: float = 0.3
    # Worker scaling: pending bookings per show over SCALING_SHOWS shows (0: not run).
    scaling_per_show: int = 0
    # Fairness: clients feeding one show without pause, and the other shows that get one
    # booking each meanwhile, FAIRNESS_GAP_SECONDS apart.
    fairness_feeders: int = 8
    fairness_others: int = 20

    @classmethod
    def full(cls) -> "Sizes":
        return cls(
            users=4000,
            flash_rows=20,
            flash_seats_per_row=100,
            many_shows=50,
            many_rows=10,
            many_seats_per_row=10,
            backlog=30000,
            noop_tasks=6000,
            seconds=10,
            window=2,
            warmup=2,
            concurrency=32,
            pg_threads=8,
            scaling_per_show=100,
            fairness_feeders=16,
            fairness_others=40,
        )

    @classmethod
    def quick(cls) -> "Sizes":
        return cls(
            users=800,
            flash_rows=10,
            flash_seats_per_row=40,
            many_shows=50,
            many_rows=4,
            many_seats_per_row=5,
            backlog=4000,
            noop_tasks=2000,
            seconds=3,
            window=1.5,
            warmup=1,
            concurrency=32,
            pg_threads=4,
            overload_multipliers=(1, 10),
            overload_step_seconds=2,
            overload_connections=200,
        )


@dataclass
class Context:
    config: Config
    stack: Stack
    sampler: Sampler
    sizes: Sizes
    users: list[data.BenchUser]
    rng: random.Random
    violations: list[str] = field(default_factory=list)

    def cpu_snapshot(self) -> tuple[float, float, dict]:
        return time.time(), time.process_time(), self.sampler.cpu_by_role()

    def cpu_since(self, snapshot) -> dict:
        wall0, client0, roles0 = snapshot
        wall = time.time() - wall0
        roles = self.sampler.cpu_by_role()
        shares = {role: round(100 * (roles[role] - roles0.get(role, 0.0)) / wall, 1) for role in roles}
        shares["benchmark client"] = round(100 * (time.process_time() - client0) / wall, 1)
        return {role: pct for role, pct in sorted(shares.items()) if pct > 0}


def _run(coro):
    return asyncio.run(coro)


@dataclass
class Submitted:
    """What the client knows about one accepted booking."""

    booking_id: str
    request: dict
    sent: float  # client clock, just before the POST that got the 202 was sent
    received: float  # client clock, when that 202 was read
    final: dict | None = None  # the last body polled
    token: str = ""  # the owner's access token
    queue_position: int | None = None  # as the 202 said
    polls: int = 0  # GETs of the Location until final


# ---- HTTP baselines and single-route throughput -----------------------------------------


def http_rate(ctx: Context, *, kind: str, make_request) -> dict:
    """Closed-loop throughput of one kind of request at the benchmark's concurrency."""

    async def main():
        async with Client(ctx.stack.base_url, ctx.sizes.concurrency) as client:
            return await closed_loop(
                client,
                make_request=make_request,
                seconds=ctx.sizes.seconds,
                warmup=ctx.sizes.warmup,
                kind=kind,
                progress=say,
            )

    snapshot = ctx.cpu_snapshot()
    result = _run(main())
    result["cpu_pct"] = ctx.cpu_since(snapshot)
    if result["errors"]:
        ctx.violations.append(f"{kind}: {result['errors']} 5xx or connection errors")
    return result


def http_rounds(ctx: Context, specs: dict) -> dict:
    """Closed-loop throughput of several kinds of request, measured in interleaved rounds
    (kind A for a window, then B, ..., then A again): on a shared machine the load of other
    work drifts, and interleaving makes each ratio compare like with like."""
    sizes = ctx.sizes
    rounds = max(1, round(sizes.seconds / sizes.window))
    totals: dict[str, list[dict]] = {kind: [] for kind in specs}
    snapshots = {kind: {} for kind in specs}

    async def main():
        async with Client(ctx.stack.base_url, sizes.concurrency) as client:
            for round_no in range(rounds):
                for kind, make in specs.items():
                    say(f"round {round_no + 1}/{rounds}: {kind}")
                    snapshot = ctx.cpu_snapshot()
                    totals[kind].append(
                        await closed_loop(
                            client,
                            make_request=make,
                            seconds=sizes.window,
                            warmup=sizes.window_warmup,
                            kind=kind,
                            progress=None,
                        )
                    )
                    for role, pct in ctx.cpu_since(snapshot).items():
                        snapshots[kind][role] = snapshots[kind].get(role, 0.0) + pct / rounds
            return client.recorder

    recorder = _run(main())
    results = {}
    for kind, windows in totals.items():
        ok = [r for r in recorder.records if r.kind == kind and 200 <= r.status < 300]
        seconds = sum(w["seconds"] for w in windows)
        errors = sum(w["errors"] for w in windows)
        statuses: dict[str, int] = {}
        for w in windows:
            for status, n in w["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
        results[kind] = {
            "rate": round(sum(w["ok"] for w in windows) / seconds, 1),
            "rounds": [round(w["rate"], 1) for w in windows],
            "requests": sum(w["requests"] for w in windows),
            "errors": errors,
            "statuses": statuses,
            "latency_ms": latency_summary([r.latency for r in ok]),
            "client_cpu_pct": round(sum(w["client_cpu_pct"] for w in windows) / len(windows), 1),
            "cpu_pct": {role: round(pct, 1) for role, pct in sorted(snapshots[kind].items())},
            "concurrency": sizes.concurrency,
            "seconds": seconds,
        }
        if errors:
            ctx.violations.append(f"{kind}: {errors} 5xx or connection errors")
    return results


def http_specs(ctx: Context, bookings: list[tuple[str, str]]) -> dict:
    """The requests of the HTTP measurements: the no-op baseline, /auth/me, POST /bookings
    (quantity 1 on a large show, decided meanwhile), a 500-seat seat map and a booking poll."""
    users = ctx.users
    post_show = data.make_show(rows=26, seats_per_row=200, title="Booking throughput")
    seat_show = _half_sold_show(ctx)

    def token(i):
        return users[i % len(users)].token

    return {
        "noop": lambda i: ("GET", "/bench/noop", token(i), None),
        "auth_me": lambda i: ("GET", "/api/v1/auth/me", token(i), None),
        "bare_me": lambda i: ("GET", f"{ctx.stack.bare_url}/me", token(i), None),
        "post": lambda i: (
            "POST",
            BOOKINGS,
            token(i),
            {"show": post_show.pk, "quantity": 1},
            {"Idempotency-Key": str(uuid.uuid4())},
        ),
        "seat_map": lambda i: ("GET", f"/api/v1/shows/{seat_show.pk}/seats", token(i), None),
        "booking_get": lambda i: (
            "GET",
            f"{BOOKINGS}/{bookings[i % len(bookings)][0]}",
            bookings[i % len(bookings)][1],
            None,
        ),
    }


def _half_sold_show(ctx: Context):
    """A 500-seat show (20 x 25) with its first 10 rows held."""
    from core.decision_queue import wake_show

    show = data.make_show(rows=20, seats_per_row=25, title="Seat map")
    data.insert_pending(
        show=show, users=ctx.users, requests=[{"seats": [f"{row}{n}"]} for row in "ABCDEFGHIJ" for n in range(1, 26)]
    )
    wake_show(show_id=show.pk)
    _wait_decided([show.pk], timeout=60)
    return show


def noop_rate(ctx: Context) -> dict:
    users = ctx.users
    return http_rate(ctx, kind="noop", make_request=lambda i: ("GET", "/bench/noop", users[i % len(users)].token, None))


# ---- Flash sale and many shows ------------------------------------------------------------


def _wait_decided(show_ids: list[int], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM core_booking WHERE show_id = ANY(%s) AND status = 'pending'", [show_ids]
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"bookings of shows {show_ids[:5]} still pending after {timeout}s")


async def _book_and_poll(client: Client, user: data.BenchUser, body: dict, out: list, deadline: float, ctx) -> None:
    """One user: submit (retrying 429/503/connection errors with the same Idempotency-Key,
    after Retry-After), then poll the Location honouring Retry-After until final."""
    key = str(uuid.uuid4())
    while time.time() < deadline:
        sent = time.time()
        status, headers, payload = await client.request(
            "POST", BOOKINGS, kind="post", token=user.token, body=body, headers={"Idempotency-Key": key}
        )
        received = time.time()
        if status == 202:
            break
        if status in (0, 429, 503):
            # Jittered, so that the clients shed together do not all come back together.
            await asyncio.sleep(retry_after_seconds(headers) * (0.5 + ctx.rng.random()))
            continue
        ctx.violations.append(f"POST {body}: unexpected {status} {payload}")
        return
    else:
        ctx.violations.append(f"POST {body}: never accepted")
        return
    submitted = Submitted(
        payload["id"], body, sent, received, token=user.token, queue_position=payload.get("queue_position")
    )
    out.append(submitted)
    location, wait = headers["Location"], retry_after_seconds(headers)
    while time.time() < deadline:
        await asyncio.sleep(wait)
        status, headers, payload = await client.request("GET", location, kind="poll", token=user.token)
        submitted.polls += 1
        if status == 200 and payload["status"] in FINAL:
            submitted.final = payload
            return
        wait = retry_after_seconds(headers)


def booking_wave(ctx: Context, *, shows: list, requests: list[tuple[int, dict]], label: str) -> dict:
    """Distinct users submit one booking each as fast as the client can, then poll until
    final; then the figures from the client's records and the database's timestamps."""
    recorder = Recorder()
    submitted: list[Submitted] = []
    users = ctx.users

    async def main():
        deadline = time.time() + 120
        async with Client(ctx.stack.base_url, ctx.sizes.concurrency * 2, recorder) as client:
            ticker = asyncio.create_task(_wave_progress(label, recorder, len(requests)))
            await asyncio.gather(
                *(
                    _book_and_poll(client, users[i % len(users)], {"show": show_id, **body}, submitted, deadline, ctx)
                    for i, (show_id, body) in enumerate(requests)
                )
            )
            ticker.cancel()

    snapshot = ctx.cpu_snapshot()
    wall0 = time.time()
    _run(main())
    wall = time.time() - wall0
    cpu = ctx.cpu_since(snapshot)

    show_ids = [show.pk for show in shows]
    by_show: dict[int, list[Submitted]] = {pk: [] for pk in show_ids}
    for s in submitted:
        by_show[s.request["show"]].append(s)
    facts = []
    for show in shows:
        mine = by_show[show.pk]
        asked = {s.booking_id: s.request for s in mine}
        violations, show_facts = invariants.show_violations(
            connection,
            show.pk,
            requests=asked,
            timings={s.booking_id: (s.sent, s.received) for s in mine},
            finals={s.booking_id: s.final for s in mine},
        )
        if len(asked) != len(mine):
            violations.append(f"show {show.pk}: one booking id was returned for two different requests")
        ctx.violations += [f"{label}: {v}" for v in violations]
        facts.append(show_facts)

    posts = [r for r in recorder.records if r.kind == "post"]
    accepted = sorted(s.received for s in submitted)
    timing = _decision_timing(show_ids)
    sustained = (len(accepted) - 1) / (accepted[-1] - accepted[0]) if len(accepted) > 1 else 0.0
    errors = recorder.errors()
    if errors:
        ctx.violations.append(f"{label}: {errors} 5xx or connection errors")
    return {
        "users": len(requests),
        "shows": len(shows),
        "capacity": sum(f["capacity"] for f in facts),
        "accepted": len(submitted),
        "accepted_per_s": round(sustained, 1),
        "post_latency_ms": latency_summary([r.latency for r in posts if r.status == 202]),
        "accept_to_decide_ms": timing["accept_to_decide_ms"],
        "last_decision_after_last_acceptance_s": timing["tail_s"],
        "polls": sum(1 for r in recorder.records if r.kind == "poll"),
        "polls_per_booking": _polls_per_booking(submitted),
        "errors_5xx": errors,
        "statuses": _statuses(recorder),
        "confirmed": sum(f["confirmed"] for f in facts),
        "failed": sum(f["failed"] for f in facts),
        "held": sum(f["held"] for f in facts),
        "sold_out_shows": sum(1 for f in facts if f["sold_out"]),
        "wall_s": round(wall, 1),
        "cpu_pct": cpu,
        "series": _series(recorder, show_ids, start=accepted[0] if accepted else wall0),
        "_bookings": [(s.booking_id, s.token) for s in submitted],
    }


def _polls_per_booking(submitted: list[Submitted]) -> dict:
    """How often the clients polled, honouring Retry-After (which grows with the queue
    position), and the deepest queue position a 202 reported."""
    polls = [s.polls for s in submitted]
    positions = [s.queue_position for s in submitted if s.queue_position is not None]
    return {
        "mean": round(sum(polls) / len(polls), 2) if polls else None,
        "max": max(polls, default=None),
        "max_queue_position": max(positions, default=None),
    }


def _statuses(recorder: Recorder) -> dict:
    counts: dict[str, int] = {}
    for r in recorder.records:
        key = f"{r.kind} {r.status}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


async def _wave_progress(label: str, recorder: Recorder, total: int) -> None:
    while True:
        await asyncio.sleep(1.0)
        posts = sum(1 for r in recorder.records if r.kind == "post" and r.status == 202)
        polls = sum(1 for r in recorder.records if r.kind == "poll")
        say(f"{label}: {posts}/{total} accepted, {polls} polls")


def _decision_timing(show_ids: list[int]) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM decided_at - created_at) FROM core_booking "
            "WHERE show_id = ANY(%s) AND decided_at IS NOT NULL ORDER BY 1",
            [show_ids],
        )
        waits = [float(row[0]) for row in cursor.fetchall()]
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM MAX(decided_at) - MAX(created_at)) FROM core_booking WHERE show_id = ANY(%s)",
            [show_ids],
        )
        tail = cursor.fetchone()[0]
    return {
        "accept_to_decide_ms": {
            "p50": round(1000 * percentile(waits, 50), 1) if waits else None,
            "p99": round(1000 * percentile(waits, 99), 1) if waits else None,
            "max": round(1000 * waits[-1], 1) if waits else None,
        },
        "tail_s": round(float(tail), 3) if tail is not None else None,
    }


def _series(recorder: Recorder, show_ids: list[int], *, start: float) -> dict:
    """Per second since the first acceptance: accepted/s, decided/s, polls/s, POST latency
    p50/p99 and acceptance-to-decision p99 (by acceptance second)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM created_at), EXTRACT(EPOCH FROM decided_at) FROM core_booking "
            "WHERE show_id = ANY(%s) AND decided_at IS NOT NULL",
            [show_ids],
        )
        rows = [(float(c), float(d)) for c, d in cursor.fetchall()]
    buckets: dict[int, dict] = {}

    def bucket(t: float) -> dict:
        return buckets.setdefault(
            int(t - start), {"accepted": 0, "decided": 0, "polls": 0, "post_latency": [], "wait": []}
        )

    for r in recorder.records:
        if r.kind == "post" and r.status == 202:
            b = bucket(r.started + r.latency)
            b["accepted"] += 1
            b["post_latency"].append(r.latency)
        elif r.kind == "poll":
            bucket(r.started)["polls"] += 1
    for created, decided in rows:
        bucket(decided)["decided"] += 1
        bucket(created)["wait"].append(decided - created)
    seconds = sorted(s for s in buckets if s >= 0)
    out = {"t": [], "accepted": [], "decided": [], "polls": [], "post_p50_ms": [], "post_p99_ms": [], "wait_p99_ms": []}
    for s in range(seconds[-1] + 1 if seconds else 0):
        b = buckets.get(s, {"accepted": 0, "decided": 0, "polls": 0, "post_latency": [], "wait": []})
        lat, wait = sorted(b["post_latency"]), sorted(b["wait"])
        out["t"].append(s)
        out["accepted"].append(b["accepted"])
        out["decided"].append(b["decided"])
        out["polls"].append(b["polls"])
        out["post_p50_ms"].append(round(1000 * percentile(lat, 50), 1) if lat else None)
        out["post_p99_ms"].append(round(1000 * percentile(lat, 99), 1) if lat else None)
        out["wait_p99_ms"].append(round(1000 * percentile(wait, 99), 1) if wait else None)
    return out


def flash_sale(ctx: Context) -> dict:
    sizes = ctx.sizes
    show = data.make_show(rows=sizes.flash_rows, seats_per_row=sizes.flash_seats_per_row)
    mix = data.request_mix(sizes.users, rows=sizes.flash_rows, seats_per_row=sizes.flash_seats_per_row, rng=ctx.rng)
    return booking_wave(ctx, shows=[show], requests=[(show.pk, body) for body in mix], label="flash sale")


def many_shows(ctx: Context) -> dict:
    sizes = ctx.sizes
    shows = [
        data.make_show(rows=sizes.many_rows, seats_per_row=sizes.many_seats_per_row, title=f"Show {i}")
        for i in range(sizes.many_shows)
    ]
    mix = data.request_mix(sizes.users, rows=sizes.many_rows, seats_per_row=sizes.many_seats_per_row, rng=ctx.rng)
    requests = [(shows[i % len(shows)].pk, body) for i, body in enumerate(mix)]
    result = booking_wave(ctx, shows=shows, requests=requests, label="many shows")
    del result["series"], result["_bookings"]
    return result


FAIRNESS_LEAD_SECONDS = 1.0  # the hot show is fed alone this long first
FAIRNESS_GAP_SECONDS = 0.1  # between two other shows' bookings
FAIRNESS_TAIL_SECONDS = 1.0  # the feeding goes on this long after the last other booking


def fairness(ctx: Context) -> dict:
    """One show fed without pause by `fairness_feeders` clients (POST quantity 1, closed
    loop, no polling); after FAIRNESS_LEAD_SECONDS, one booking for each of
    `fairness_others` other shows, FAIRNESS_GAP_SECONDS apart, each polled until final.
    The figure is each other show's first decision: decided_at - created_at of its booking
    (PostgreSQL's clock), which the hot show's drain must not hold up."""
    sizes = ctx.sizes
    hot = data.make_show(rows=26, seats_per_row=200, title="Fairness hot")
    others = [data.make_show(rows=4, seats_per_row=5, title=f"Fairness {i}") for i in range(sizes.fairness_others)]
    users = ctx.users
    recorder = Recorder()
    hot_accepted: list[Submitted] = []
    other_accepted: list[Submitted] = []
    counter = iter(range(10**9))

    async def feed(client: Client, stop: asyncio.Event) -> None:
        while not stop.is_set():
            i = next(counter)
            # The last users are the other shows' (per-user pending limits stay far away).
            user = users[i % (len(users) - sizes.fairness_others)]
            body = {"show": hot.pk, "quantity": 1}
            sent = time.time()
            key = {"Idempotency-Key": str(uuid.uuid4())}
            status, headers, payload = await client.request(
                "POST", BOOKINGS, kind="post", token=user.token, body=body, headers=key
            )
            if status == 202:
                hot_accepted.append(Submitted(payload["id"], body, sent, time.time(), token=user.token))
            elif status in (0, 429, 503):
                await asyncio.sleep(retry_after_seconds(headers) * (0.5 + ctx.rng.random()))
            else:
                ctx.violations.append(f"fairness: POST {body}: unexpected {status} {payload}")

    async def main():
        stop = asyncio.Event()
        async with Client(ctx.stack.base_url, sizes.fairness_feeders + sizes.fairness_others, recorder) as client:
            feeders = [asyncio.create_task(feed(client, stop)) for _ in range(sizes.fairness_feeders)]
            await asyncio.sleep(FAIRNESS_LEAD_SECONDS)
            deadline = time.time() + 60
            polls = []
            for k, show in enumerate(others):
                user = users[len(users) - 1 - k]
                body = {"show": show.pk, "quantity": 1}
                polls.append(asyncio.create_task(_book_and_poll(client, user, body, other_accepted, deadline, ctx)))
                await asyncio.sleep(FAIRNESS_GAP_SECONDS)
            await asyncio.sleep(FAIRNESS_TAIL_SECONDS)
            stop.set()
            await asyncio.gather(*feeders, *polls)

    snapshot = ctx.cpu_snapshot()
    _run(main())
    cpu = ctx.cpu_since(snapshot)
    _wait_decided([hot.pk] + [show.pk for show in others], timeout=120)
    for show, mine in [(hot, hot_accepted)] + [
        (show, [s for s in other_accepted if s.request["show"] == show.pk]) for show in others
    ]:
        violations, _ = invariants.show_violations(
            connection,
            show.pk,
            requests={s.booking_id: s.request for s in mine},
            timings={s.booking_id: (s.sent, s.received) for s in mine},
        )
        ctx.violations += [f"fairness: {v}" for v in violations]
    errors = recorder.errors()
    if errors:
        ctx.violations.append(f"fairness: {errors} 5xx or connection errors")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM decided_at - created_at) FROM core_booking WHERE show_id = ANY(%s) ORDER BY 1",
            [[show.pk for show in others]],
        )
        waits = [float(row[0]) for row in cursor.fetchall()]
        cursor.execute(
            "SELECT COUNT(*), EXTRACT(EPOCH FROM MAX(decided_at) - MIN(decided_at)) FROM core_booking"
            " WHERE show_id = %s",
            [hot.pk],
        )
        hot_decided, hot_span = cursor.fetchone()
    hot_rate = hot_decided / float(hot_span) if hot_span else 0.0
    return {
        "feeders": sizes.fairness_feeders,
        "others": len(others),
        "hot_accepted": len(hot_accepted),
        "hot_decided_per_s": round(hot_rate, 1),
        "others_accepted": len(other_accepted),
        "first_decision_ms": {
            "p50": round(1000 * percentile(waits, 50), 1) if waits else None,
            "p99": round(1000 * percentile(waits, 99), 1) if waits else None,
            "max": round(1000 * waits[-1], 1) if waits else None,
        },
        "errors_5xx": errors,
        "statuses": _statuses(recorder),
        "cpu_pct": cpu,
    }


# ---- Worker-side: Celery's no-op rate and the backlog drain --------------------------------


def _watch(count_left, total: int, *, timeout: float, label: str) -> tuple[float, float]:
    """Poll how many are left until none; returns (time of the first observed progress,
    time none was left). Polls every 10 ms."""
    first = None
    deadline = time.monotonic() + timeout
    last_say = 0.0
    while time.monotonic() < deadline:
        left = count_left()
        now = time.time()
        if first is None and left < total:
            first = now
        if left == 0:
            return first or now, now
        if now - last_say > 1:
            say(f"{label}: {total - left}/{total} done")
            last_say = now
        time.sleep(0.01)
    raise TimeoutError(f"{label}: not done after {timeout}s")


def celery_noop_rate(ctx: Context) -> dict:
    """N no-op tasks queued while the worker is stopped, then the worker started: tasks/s
    from the first task run to the last."""
    from bench.tasks import noop

    ctx.stack.stop("worker")
    client = redis_client()
    client.delete(NOOP_COUNTER)
    n = ctx.sizes.noop_tasks
    with noop.app.producer_or_acquire() as producer:
        for _ in range(n):
            noop.apply_async(queue="bookings", producer=producer)
    snapshot = ctx.cpu_snapshot()
    ctx.stack.start_worker()
    first, done = _watch(lambda: n - int(client.get(NOOP_COUNTER) or 0), n, timeout=300, label="celery no-op")
    # The first observation is up to one poll late; count from the task it saw.
    rate = n / max(done - first, 1e-3)
    return {"tasks": n, "rate": round(rate, 1), "seconds": round(done - first, 2), "cpu_pct": ctx.cpu_since(snapshot)}


def backlog_drain(ctx: Context) -> dict:
    """Tens of thousands of pending bookings of one show, with their wake-up queued as the
    API leaves it, while the worker is stopped; then the worker is started."""
    from core.decision_queue import wake_show

    sizes = ctx.sizes
    ctx.stack.stop("worker")
    show = data.make_show(rows=26, seats_per_row=200, title="Backlog")
    mix = data.request_mix(sizes.backlog, rows=26, seats_per_row=200, rng=ctx.rng)
    data.insert_pending(show=show, users=ctx.users, requests=mix)
    wake_show(show_id=show.pk)
    n = len(mix)

    def left() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM core_booking WHERE show_id = %s AND status = 'pending'", [show.pk])
            return cursor.fetchone()[0]

    snapshot = ctx.cpu_snapshot()
    ctx.stack.start_worker()
    _, done = _watch(left, n, timeout=300, label="backlog drain")
    cpu = ctx.cpu_since(snapshot)
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXTRACT(EPOCH FROM MIN(decided_at)) FROM core_booking WHERE show_id = %s", [show.pk])
        first = float(cursor.fetchone()[0])
    violations, facts = invariants.show_violations(connection, show.pk)
    violations += invariants.check_drain_order(connection, show.pk)
    ctx.violations += [f"backlog: {v}" for v in violations]
    return {
        "bookings": n,
        "rate": round(n / max(done - first, 1e-3), 1),
        "seconds": round(done - first, 2),
        "confirmed": facts["confirmed"],
        "failed": facts["failed"],
        "held": facts["held"],
        "cpu_pct": cpu,
    }


SCALING_SHOWS = 40
SCALING_PROCESSES = (1, 2, 4)


def worker_scaling(ctx: Context) -> dict:
    """Decisions per second across SCALING_SHOWS shows with 1, 2 and 4 worker processes.

    For each count: fresh shows whose bookings are pending (inserted while no worker runs);
    the Procfile's worker is started with that many pool processes and, once it is ready,
    each show's wake-up is queued as the API queues it. The rate is the decisions over the
    time from the wake-ups (PostgreSQL's clock) to the last decision (decided_at): a drain
    turn decides many shows in one transaction, whose decisions share one decided_at, so the
    span between the first and the last decision would leave the first turn out."""
    from core.decision_queue import wake_show

    sizes = ctx.sizes
    rows, seats_per_row = 5, 10
    runs = {}
    for processes in SCALING_PROCESSES:
        ctx.stack.stop("worker")
        shows = [
            data.make_show(rows=rows, seats_per_row=seats_per_row, title=f"Scaling {processes}.{i}")
            for i in range(SCALING_SHOWS)
        ]
        for show in shows:
            mix = data.request_mix(sizes.scaling_per_show, rows=rows, seats_per_row=seats_per_row, rng=ctx.rng)
            data.insert_pending(show=show, users=ctx.users, requests=mix)
        ids = [show.pk for show in shows]
        n = SCALING_SHOWS * sizes.scaling_per_show

        def left(ids=ids) -> int:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT COUNT(*) FROM core_booking WHERE show_id = ANY(%s) AND status = 'pending'", [ids]
                )
                return cursor.fetchone()[0]

        ctx.stack.start_worker(WORKER_CONCURRENCY=processes)
        snapshot = ctx.cpu_snapshot()
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            (woken_at,) = cursor.fetchone()
        for show_id in ids:
            wake_show(show_id=show_id)
        _watch(left, n, timeout=600, label=f"worker scaling, {processes} process(es)")
        cpu = ctx.cpu_since(snapshot)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT EXTRACT(EPOCH FROM MAX(decided_at) - %s) FROM core_booking WHERE show_id = ANY(%s)",
                [woken_at, ids],
            )
            seconds = float(cursor.fetchone()[0])
        for show_id in ids:
            violations, _ = invariants.show_violations(connection, show_id)
            violations += invariants.check_drain_order(connection, show_id)
            ctx.violations += [f"worker scaling ({processes}): {v}" for v in violations]
        runs[processes] = {"bookings": n, "seconds": round(seconds, 2), "rate": round(n / max(seconds, 1e-3), 1)}
        runs[processes]["cpu_pct"] = cpu
    ctx.stack.stop("worker")
    ctx.stack.start_worker()
    return {"shows": SCALING_SHOWS, "per_show": sizes.scaling_per_show, "runs": runs}


# ---- The database's own limit -------------------------------------------------------------


def pg_booking_rate(ctx: Context) -> dict:
    """The submit transaction POST /bookings runs (the show with its screen, then the pending
    row), issued directly with psycopg2 from several threads, one connection each."""
    show = data.make_show(rows=26, seats_per_row=200, title="Raw PostgreSQL")
    user_ids = [u.id for u in ctx.users]
    stop = threading.Event()
    counts = [0] * ctx.sizes.pg_threads
    measuring = threading.Event()

    def worker(index: int) -> None:
        conn = psycopg2.connect(**ctx.config.pg_params())
        cur = conn.cursor()
        i = index
        while not stop.is_set():
            cur.execute(
                "SELECT s.id, s.status, s.starts_at, c.rows, c.seats_per_row "
                "FROM core_show s JOIN core_screen c ON c.id = s.screen_id WHERE s.id = %s",
                [show.pk],
            )
            cur.fetchone()
            cur.execute(
                "INSERT INTO core_booking (id, user_id, show_id, status, seats, quantity, failure_reason, "
                "idempotency_key, request_fingerprint, decide_attempts, created_at) "
                "VALUES (%s, %s, %s, 'pending', '{}', 1, NULL, %s, %s, 0, now()) RETURNING sequence",
                [str(uuid.uuid4()), user_ids[i % len(user_ids)], show.pk, str(uuid.uuid4()), "0" * 64],
            )
            cur.fetchone()
            conn.commit()
            i += ctx.sizes.pg_threads
            if measuring.is_set():
                counts[index] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(ctx.sizes.pg_threads)]
    for thread in threads:
        thread.start()
    time.sleep(ctx.sizes.warmup)
    snapshot = ctx.cpu_snapshot()
    measuring.set()
    t0 = time.time()
    time.sleep(ctx.sizes.seconds)
    measuring.clear()
    elapsed = time.time() - t0
    stop.set()
    for thread in threads:
        thread.join()
    cpu = ctx.cpu_since(snapshot)
    # Leave the rows decided so that no worker or recovery job picks them up later.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_booking SET status = 'failed', failure_reason = 'show_cancelled', decided_at = now() "
            "WHERE show_id = %s",
            [show.pk],
        )
    return {"rate": round(sum(counts) / elapsed, 1), "threads": ctx.sizes.pg_threads, "cpu_pct": cpu}


# ---- Soak: memory over a steady mixed load -------------------------------------------------


def soak(ctx: Context, seconds: float) -> dict:
    """A steady mix for `seconds` (book + poll, seat maps, no-ops) at a fixed concurrency;
    RSS of every process is sampled throughout (see memory_growth)."""
    shows = [data.make_show(rows=26, seats_per_row=200, title=f"Soak {i}") for i in range(4)]
    users = ctx.users
    recorder = Recorder()

    async def main():
        end = time.time() + seconds
        counter = iter(range(10**9))
        async with Client(ctx.stack.base_url, 16, recorder) as client:

            async def loop():
                while time.time() < end:
                    i = next(counter)
                    user, show = users[i % len(users)], shows[i % len(shows)]
                    sent, deadline = [], time.time() + 30
                    await _book_and_poll(client, user, {"show": show.pk, "quantity": 1}, sent, deadline, ctx)
                    await client.request("GET", f"/api/v1/shows/{show.pk}/seats", kind="seat_map", token=user.token)
                    await client.request("GET", "/bench/noop", kind="noop", token=user.token)

            async def ticker():
                start = time.time()
                while True:
                    await asyncio.sleep(5)
                    say(f"soak: {time.time() - start:.0f}s/{seconds:.0f}s, {len(recorder.records)} requests")

            tick = asyncio.create_task(ticker())
            await asyncio.gather(*(loop() for _ in range(16)))
            tick.cancel()

    t0 = time.time()
    _run(main())
    errors = recorder.errors()
    if errors:
        ctx.violations.append(f"soak: {errors} 5xx or connection errors")
    # Everything accepted gets decided.
    _wait_decided([s.pk for s in shows], timeout=60)
    return {
        "seconds": round(time.time() - t0),
        "requests": len(recorder.records),
        "errors_5xx": errors,
        "statuses": _statuses(recorder),
    }


def memory_growth(sampler: Sampler, *, since: float, window: float = 60.0) -> tuple[list[dict], list[str]]:
    """For every process that lived through the run: median RSS in the first `window`
    seconds after warm-up versus the last `window` seconds. Growth above 10 % + 16 MiB is
    reported as unbounded."""
    rows, violations = [], []
    for pid, (role, samples) in sampler.series().items():
        samples = [(t, rss) for t, rss in samples if t >= since]
        if len(samples) < 4 or samples[-1][0] - samples[0][0] < 3 * window:
            continue
        start, end = samples[0][0], samples[-1][0]
        first = statistics.median(rss for t, rss in samples if t <= start + window) / 2**20
        last = statistics.median(rss for t, rss in samples if t >= end - window) / 2**20
        growth = last - first
        bounded = growth <= 0.10 * first + 16
        rows.append(
            {
                "pid": pid,
                "role": role,
                "first_mib": round(first, 1),
                "last_mib": round(last, 1),
                "peak_mib": round(max(rss for _, rss in samples) / 2**20, 1),
                "growth_mib": round(growth, 1),
                "bounded": bounded,
            }
        )
        if not bounded:
            violations.append(f"memory: {role} (pid {pid}) grew from {first:.0f} MiB to {last:.0f} MiB")
    return sorted(rows, key=lambda r: (r["role"], r["pid"])), violations


# ---- Overload: open-loop arrivals far above what the service can serve ---------------------


def overload(ctx: Context, *, sustainable: float) -> dict:
    """POST /bookings (quantity 1, a 5 200-seat show) arriving at fixed rates, open loop (a
    request is sent when due, whatever the answers so far), in steps of `multipliers` x the
    sustainable rate (the closed-loop POST rate measured before) over hundreds of connections.
    Per step: what was answered 2xx, what was shed (503 `overloaded` or 429, with
    Retry-After), any other 5xx or connection error (a violation), and the latency of each.
    Afterwards every accepted booking must exist and be decided, and the show's seat
    invariants hold."""
    sizes = ctx.sizes
    show = data.make_show(rows=26, seats_per_row=200, title="Overload")
    tokens = [u.token for u in ctx.users]
    recorder = Recorder()
    accepted: list[str] = []
    lateness: dict[str, list[float]] = {}
    base = max(sustainable, 1.0)
    processes = sizes.overload_processes

    snapshot = ctx.cpu_snapshot()
    # Several client processes: one asyncio loop cannot send thousands of requests a second
    # on a shared machine (its lateness is reported per step).
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(time.sleep, [0] * processes))  # started before the first step is timed
        for multiplier in sizes.overload_multipliers:
            kind = f"{multiplier}x"
            say(f"overload: {kind} ({multiplier * base:.0f} req/s offered)")
            start = time.time() + 0.5
            futures = [
                pool.submit(
                    open_loop_worker,
                    ctx.stack.base_url,
                    BOOKINGS,
                    tokens[i::processes],
                    {"show": show.pk, "quantity": 1},
                    rate=multiplier * base / processes,
                    start=start,
                    seconds=sizes.overload_step_seconds,
                    conns=sizes.overload_connections // processes,
                )
                for i in range(processes)
            ]
            for future in futures:
                out = future.result()
                for started, latency, status, shed in out["records"]:
                    recorder.add(started=started, latency=latency, status=status, kind=kind, shed=shed)
                accepted += out["accepted"]
                lateness.setdefault(kind, []).extend(out["lateness"])
            time.sleep(1.0)  # let the queues empty between steps
    cpu = ctx.cpu_since(snapshot)

    steps = []
    for multiplier in sizes.overload_multipliers:
        kind = f"{multiplier}x"
        records = [r for r in recorder.records if r.kind == kind]
        ok = [r for r in records if 200 <= r.status < 300]
        shed = [r for r in records if r.shed or r.status == 429]
        errors = [r for r in records if is_error(r)]
        first = min((r.started for r in records), default=0.0)
        last = max((r.started for r in records), default=0.0)
        span = max(last - first, 1e-3)
        steps.append(
            {
                "multiplier": multiplier,
                "offered_per_s": round(multiplier * base, 1),
                "sent_per_s": round(len(records) / span, 1),
                "requests": len(records),
                "answered_2xx": len(ok),
                "answered_2xx_per_s": round(len(ok) / span, 1),
                "shed": len(shed),
                "shed_per_s": round(len(shed) / span, 1),
                "other_5xx_or_errors": len(errors),
                "other_4xx": len(records) - len(ok) - len(shed) - len(errors),
                "accepted_latency_ms": latency_summary([r.latency for r in ok]),
                "shed_latency_ms": latency_summary([r.latency for r in shed]),
                "client_send_lateness_p99_ms": round(1000 * percentile(sorted(lateness.get(kind, [])), 99), 1)
                if lateness.get(kind)
                else None,
            }
        )
        if errors:
            ctx.violations.append(f"overload {kind}: {len(errors)} 5xx (other than overloaded) or connection errors")

    _wait_decided([show.pk], timeout=180)
    # The seat invariants of the show; whether each accepted booking exists is counted below.
    violations, facts = invariants.show_violations(connection, show.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id::text FROM core_booking WHERE show_id = %s", [show.pk])
        stored = {row[0] for row in cursor.fetchall()}
    lost = set(accepted) - stored
    if lost:
        violations.append(f"{len(lost)} accepted bookings lost (e.g. {sorted(lost)[0]})")
    untold = stored - set(accepted)
    if untold and not any(s["other_5xx_or_errors"] for s in steps):
        violations.append(f"{len(untold)} bookings nobody was told about")
    ctx.violations += [f"overload: {v}" for v in violations]
    return {
        "sustainable_per_s": round(base, 1),
        "connections": sizes.overload_connections,
        "step_seconds": sizes.overload_step_seconds,
        "steps": steps,
        "accepted": len(accepted),
        "lost": len(lost),
        "confirmed": facts["confirmed"],
        "failed": facts["failed"],
        "cpu_pct": cpu,
    }
