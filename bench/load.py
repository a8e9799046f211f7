"""The asyncio load client (aiohttp): closed-loop request streams and per-request records.

A request holds one of `concurrency` slots from just before it is sent until its answer is
read, so its latency is the server's (queueing in gunicorn included) and never time spent
waiting for a client slot. Connection errors are recorded as status 0 and count with the
5xx answers.
"""

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp


@dataclass
class Record:
    started: float  # time.time() when sent
    latency: float  # seconds
    status: int  # 0: connection error
    kind: str
    shed: bool = False  # a 503 `overloaded` with Retry-After: admission control's answer


def is_shed(status: int, headers, raw: bytes) -> bool:
    """Admission control's answer to the excess under overload (contract: a fast 503 with
    Retry-After); not a server error."""
    return status == 503 and "Retry-After" in headers and b'"overloaded"' in raw


@dataclass
class Recorder:
    records: list[Record] = field(default_factory=list)

    def add(self, *, started: float, latency: float, status: int, kind: str, shed: bool = False) -> None:
        self.records.append(Record(started, latency, status, kind, shed))

    def errors(self) -> int:
        """5xx answers (but the sheds) and connection errors."""
        return sum(1 for r in self.records if is_error(r))


def is_error(r: Record) -> bool:
    return r.status == 0 or (r.status >= 500 and not r.shed)


class Client:
    """One aiohttp session with at most `concurrency` requests in flight."""

    def __init__(self, base_url: str, concurrency: int, recorder: Recorder | None = None):
        self.base_url = base_url
        self.concurrency = concurrency
        self.recorder = recorder or Recorder()
        self._slots = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "Client":
        connector = aiohttp.TCPConnector(limit=0, force_close=False, ttl_dns_cache=None)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=60),
            json_serialize=json.dumps,
            skip_auto_headers=("User-Agent",),
        )
        return self

    async def __aexit__(self, *exc) -> None:
        await self._session.close()

    async def request(
        self, method: str, path: str, *, kind: str, token: str, body: dict | None = None, headers: dict | None = None
    ) -> tuple[int, dict, dict | None]:
        """(status, headers, JSON body or None); status 0 on a connection error."""
        all_headers = {"Authorization": f"Bearer {token}"}
        if headers:
            all_headers.update(headers)
        url = path if path.startswith("http") else self.base_url + path
        async with self._slots:
            started = time.time()
            t0 = time.perf_counter()
            try:
                async with self._session.request(method, url, json=body, headers=all_headers) as response:
                    raw = await response.read()
                    status, response_headers = response.status, response.headers
            except (TimeoutError, aiohttp.ClientError):
                self.recorder.add(started=started, latency=time.perf_counter() - t0, status=0, kind=kind)
                return 0, {}, None
            self.recorder.add(
                started=started,
                latency=time.perf_counter() - t0,
                status=status,
                kind=kind,
                shed=is_shed(status, response_headers, raw),
            )
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, response_headers, parsed


async def closed_loop(
    client: Client,
    *,
    make_request: Callable[[int], tuple[str, str, str, dict | None]],
    seconds: float,
    warmup: float,
    kind: str,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Run `concurrency` loops of back-to-back requests for warmup + seconds; count only the
    requests sent after the warm-up. make_request(i) -> (method, path, token, body[, headers])."""
    counter = itertools.count()
    start = time.time()
    measure_from = start + warmup
    end = measure_from + seconds

    async def loop() -> None:
        while time.time() < end:
            method, path, token, body, *headers = make_request(next(counter))
            status, response_headers, payload = await client.request(
                method, path, kind=kind, token=token, body=body, headers=headers[0] if headers else None
            )
            if status == 503 and (payload or {}).get("code") == "overloaded":
                # Shed by admission control: a client waits Retry-After, as the contract asks.
                await asyncio.sleep(float(response_headers.get("Retry-After", 1)))

    cpu0 = time.process_time()
    ticker = asyncio.create_task(_progress(client.recorder, kind, start, end, progress))
    await asyncio.gather(*(loop() for _ in range(client.concurrency)))
    ticker.cancel()
    measured = [r for r in client.recorder.records if r.kind == kind and r.started >= measure_from]
    ok = [r for r in measured if 200 <= r.status < 300]
    wall = time.time() - start
    return {
        "requests": len(measured),
        "ok": len(ok),
        "rate": len(ok) / seconds,
        "errors": sum(1 for r in measured if is_error(r)),
        "statuses": _status_counts(measured),
        "latency_ms": latency_summary([r.latency for r in ok]),
        "client_cpu_pct": round(100 * (time.process_time() - cpu0) / wall, 1),
        "concurrency": client.concurrency,
        "seconds": seconds,
    }


async def _progress(recorder: Recorder, kind: str, start: float, end: float, progress) -> None:
    if progress is None:
        return
    while True:
        await asyncio.sleep(1.0)
        done = sum(1 for r in recorder.records if r.kind == kind)
        progress(f"{kind}: {time.time() - start:4.0f}s/{end - start:.0f}s, {done} requests")


def latency_summary(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)
    return {
        "p50": round(1000 * percentile(ordered, 50), 1),
        "p99": round(1000 * percentile(ordered, 99), 1),
        "max": round(1000 * ordered[-1], 1),
    }


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def _status_counts(records: list[Record]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[str(r.status)] = counts.get(str(r.status), 0) + 1
    return dict(sorted(counts.items()))


def say(message: str) -> None:
    """Progress on one terminal line (a plain line per message when not a terminal)."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K  {message}")
    else:
        sys.stderr.write(f"  {message}\n")
    sys.stderr.flush()


# ---- Open loop, from several processes --------------------------------------------------


def open_loop_worker(
    base_url: str, path: str, tokens: list[str], body: dict, *, rate: float, start: float, seconds: float, conns: int
) -> dict:
    """In a process of its own: POST `body` to `path` at `rate` per second from `start` (a
    time.time()) for `seconds`, open loop: each request is sent when due, whatever the
    answers so far. Returns the records as tuples and the ids of the 202s."""
    import uuid

    async def main():
        records, accepted = [], []
        async with Client(base_url, conns) as client:
            total = int(rate * seconds)

            async def one(i: int, due: float) -> None:
                late = time.time() - due
                status, _, payload = await client.request(
                    "POST",
                    path,
                    kind="open",
                    token=tokens[i % len(tokens)],
                    body=body,
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                )
                if status == 202:
                    accepted.append(payload["id"])
                records.append(late)

            await asyncio.sleep(max(0.0, start - time.time()))
            tasks, launched = [], 0
            while launched < total:
                due_now = min(total, int((time.time() - start) * rate) + 1)
                while launched < due_now:
                    tasks.append(asyncio.create_task(one(launched, start + launched / rate)))
                    launched += 1
                await asyncio.sleep(0.002)
            await asyncio.gather(*tasks)
            return [(r.started, r.latency, r.status, r.shed) for r in client.recorder.records], accepted, records

    records, accepted, lateness = asyncio.run(main())
    return {"records": records, "accepted": accepted, "lateness": lateness}
