"""python -m bench.profile [--requests N] [--out DIR]

Where one request's time goes: the service's WSGI application (admission control, every
middleware, JWT authentication, throttles, the view, the renderer) and the bare DRF +
simplejwt project (bench/bare) called in-process, one request after another, on a fresh
benchmark database with the real PostgreSQL and Redis. For each kind of request: the CPU
time per request of this process (steadier than a rate on a shared machine, since other
work only stretches the wall clock) and a pyinstrument profile, written to
bench/results/profile/<kind>.txt. The bare project runs in a process of its own (Django's
settings are per process) against the same database, with the same tokens.
"""

import argparse
import io
import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.stack import ROOT, Config, create_database, drop_database

KINDS = ("noop", "auth_me", "post")
# Requests of each kind before the measured ones.
WARM_UP = 200


def _environ(method: str, path: str, token: str, body: dict | None = None, headers: dict | None = None) -> dict:
    raw = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(raw),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if raw:
        environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(raw)))
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def _call(app, environ: dict) -> str:
    status = []
    body = app(environ, lambda s, h, exc_info=None: status.append(s))
    try:
        b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    return status[0]


# What a request's time is spent in: the first frame of a stack that matches names a part; the
# parts nested in it (the view inside the middleware) are counted apart.
_PARTS = (
    ("AdmissionControl.__call__", "admission control"),
    ("RequestIdMiddleware.__call__", "request id middleware"),
    ("RequestMetricsMiddleware.__call__", "metrics middleware"),
    ("DependencyUnavailableMiddleware.__call__", "error middleware"),
    ("close_old_connections", "connection checks (CONN_HEALTH_CHECKS, CONN_MAX_AGE)"),
    ("JWTAuthentication.authenticate", "JWT authentication (token, user query, revocation check)"),
    ("check_throttles", "throttles (Redis)"),
    ("check_permissions", "permissions"),
    ("finalize_response", "content negotiation and response headers"),
    ("rendered_content", "rendering (JSON)"),
    ("Response.close", "request finished (signals)"),
    (".get", "view"),
    (".post", "view"),
)


def _part(frame) -> str | None:
    name = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
    path = frame.file_path or ""
    for key, part in _PARTS:
        if key.startswith("."):
            if frame.function == key[1:] and ("booking_api/views" in path or "bench/" in path):
                return part
        elif name.endswith(key):
            return part
    if frame.function == "__call__" and "Middleware" in (frame.class_name or "") and "booking_api" not in path:
        return "Django middleware (security, WhiteNoise, session, common, CSRF, auth, messages, X-Frame)"
    if frame.function == "__call__" and frame.class_name == "WSGIHandler":
        return "Django's handler (request, URL resolution, signals)"
    return None


def components(session) -> dict[str, float]:
    """Share of the profiled time in each part of the request path (_PARTS)."""
    root = session.root_frame()
    totals: dict[str, float] = {}

    def walk(frame, part: str) -> None:
        for child in frame.children:
            child_part = _part(child) or part
            if child_part != part:
                totals[child_part] = totals.get(child_part, 0.0) + child.time
                totals[part] = totals.get(part, 0.0) - child.time
            walk(child, child_part)

    totals["profiler loop"] = root.time
    walk(root, "profiler loop")
    return {name: round(100 * t / root.time, 1) for name, t in sorted(totals.items(), key=lambda kv: -kv[1])}


def measure(app, make_environ, *, requests: int, profile_path: Path | None, expect: str) -> dict:
    """Warm up, then time `requests` calls (CPU and wall per request), then profile as many."""
    from pyinstrument import Profiler
    from pyinstrument.renderers import ConsoleRenderer

    for i in range(min(WARM_UP, requests)):
        status = _call(app, make_environ(i))
        assert status.startswith(expect), status
    # Every answer is checked, so that a profile is never of refusals (a 429 takes another path).
    statuses = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(requests):
        statuses.append(_call(app, make_environ(i)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert all(status.startswith(expect) for status in statuses), {s for s in statuses if not s.startswith(expect)}
    result = {"requests": requests, "cpu_us": round(1e6 * cpu / requests), "wall_us": round(1e6 * wall / requests)}
    if profile_path is not None:
        profiler = Profiler(interval=0.0002)
        profiler.start()
        for i in range(requests):
            statuses[i] = _call(app, make_environ(i))
        profiler.stop()
        assert all(status.startswith(expect) for status in statuses), {s for s in statuses if not s.startswith(expect)}
        session = profiler.last_session
        result["components_pct"] = components(session)
        profile_path.write_text(
            "\n".join(f"{pct:5.1f} %  {name}" for name, pct in result["components_pct"].items())
            + "\n\n"
            + ConsoleRenderer(unicode=True, time="percent_of_total").render(session)
        )
    return result


def run_service(config: Config, out: Path, requests: int, tokens: list[str], show_id: int) -> dict:
    from django.conf import settings

    from booking_api.config.wsgi import application

    # No worker decides the bookings: each user submits at most BOOKING_MAX_PENDING_PER_USER
    # of them in the whole run (main makes enough users), so that every POST is accepted.
    posts = itertools.count()
    per_user = settings.BOOKING_MAX_PENDING_PER_USER
    makers = {
        "noop": lambda i: _environ("GET", "/bench/noop", tokens[i % len(tokens)]),
        "auth_me": lambda i: _environ("GET", "/api/v1/auth/me", tokens[i % len(tokens)]),
        "post": lambda i: _environ(
            "POST",
            "/api/v1/bookings",
            tokens[next(posts) // per_user],
            {"show": show_id, "quantity": 1},
            {"Idempotency-Key": str(uuid.uuid4())},
        ),
    }
    expect = {"noop": "200", "auth_me": "200", "post": "202"}
    return {
        kind: measure(
            application, makers[kind], requests=requests, profile_path=out / f"{kind}.txt", expect=expect[kind]
        )
        for kind in KINDS
    }


def run_bare(requests: int, tokens_file: Path, out: Path) -> dict:
    """In the bare project's own process (see main)."""
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bare.settings"
    django.setup()
    from bench.bare.wsgi import application

    tokens = json.loads(tokens_file.read_text())
    make = lambda i: _environ("GET", "/me", tokens[i % len(tokens)])  # noqa: E731
    return {"bare_me": measure(application, make, requests=requests, profile_path=out / "bare_me.txt", expect="200")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "profile")
    parser.add_argument("--bare-tokens", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.bare_tokens:
        print(json.dumps(run_bare(args.requests, args.bare_tokens, args.out)))
        return 0

    config = Config(
        db_name=os.environ.get("BENCH_DB_NAME", "booking_bench") + "_profile",
        redis_db=int(os.environ.get("BENCH_REDIS_DB", "13")),
    )
    create_database(config)
    env = {key: value for key, value in config.env(LOG_LEVEL="WARNING").items() if key != "PATH"}
    os.environ.update(env)
    # Counters in memory: the profile is of one process, and leaves no files behind.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = ""
    import django

    django.setup()
    from django.conf import settings

    from bench import data
    from core.redis import redis_client

    redis_client().flushdb()
    try:
        # Enough users that no one passes the per-user throttle, nor its pending limit in the
        # POSTs (no user gets more than BOOKING_MAX_PENDING_PER_USER of them in the whole run).
        posts = min(WARM_UP, args.requests) + 2 * args.requests
        users = data.make_users(max(50, -(-posts // settings.BOOKING_MAX_PENDING_PER_USER)), prefix="profile")
        tokens = [u.token for u in users]
        show = data.make_show(rows=26, seats_per_row=200, title="Profile")
        results = run_service(config, args.out, args.requests, tokens, show.pk)
        tokens_file = args.out / "tokens.json"
        tokens_file.write_text(json.dumps(tokens))
        bare = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.profile",
                "--requests",
                str(args.requests),
                "--out",
                str(args.out),
                "--bare-tokens",
                str(tokens_file),
            ],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.bare.settings"},
            capture_output=True,
            text=True,
            check=True,
        )
        tokens_file.unlink()
        results.update(json.loads(bare.stdout.strip().splitlines()[-1]))
    finally:
        redis_client().flushdb()
        from django.db import connections

        connections.close_all()
        drop_database(config)
    results["load_average"] = os.getloadavg()[0]
    (args.out / "summary.json").write_text(json.dumps(results, indent=1) + "\n")
    for kind, r in results.items():
        if isinstance(r, dict):
            print(f"{kind:8s} {r['cpu_us']:6d} us CPU/request  {r['wall_us']:6d} us wall/request")
    me, bare_me = results["auth_me"]["cpu_us"], results["bare_me"]["cpu_us"]
    post, noop = results["post"]["cpu_us"], results["noop"]["cpu_us"]
    print(f"/auth/me costs {me / bare_me:.2f}x the bare me's CPU; POST {post / noop:.2f}x the no-op's")
    print(f"profiles in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
