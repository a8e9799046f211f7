"""python -m bench [--quick | --soak | --scaling] [--db-name NAME] [--redis-db N] [--out DIR] [--strict]

Exit status: 0 when every invariant held; 1 on any violation (5xx, a seat sold twice, a
booking lost or out of order, unbounded memory); 2 with --strict when a performance target
was missed too. Figures are never asserted without --strict: on a shared machine they are
noise-bound, which is why each is reported beside a baseline from the same run.
"""

import argparse
import os
import random
import runpy
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.stack import ROOT, Config, Sampler, Stack, create_database, drop_database

# The scenarios of a full or quick run, in the order they run (--only picks some).
SCENARIOS = (
    "flash_sale",
    "http",
    "overload",
    "many_shows",
    "fairness",
    "pg_raw",
    "celery_noop",
    "backlog",
    "worker_scaling",
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke test sizes (under 2 minutes)")
    mode.add_argument("--soak", action="store_true", help="only the memory soak (5 minutes)")
    mode.add_argument("--scaling", action="store_true", help="only the worker scaling scenario (40 shows)")
    parser.add_argument("--soak-seconds", type=float, default=300)
    parser.add_argument("--db-name", default=os.environ.get("BENCH_DB_NAME", "booking_bench"))
    parser.add_argument("--redis-db", type=int, default=int(os.environ.get("BENCH_REDIS_DB", "13")))
    parser.add_argument("--out", type=Path, default=None, help="where the report goes (default bench/results)")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument("--strict", action="store_true", help="also fail (exit 2) when a target is missed")
    parser.add_argument("--http-seconds", type=float, help="seconds per kind of HTTP request (all rounds)")
    parser.add_argument(
        "--only",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=None,
        metavar="SCENARIOS",
        help=f"run only these scenarios of the full or quick run, comma-separated ({', '.join(SCENARIOS)}); "
        "targets whose figures were not measured are left out of the report",
    )
    return parser.parse_args(argv)


def setup_django(config: Config) -> None:
    os.environ.update({key: value for key, value in config.env().items() if key != "PATH"})
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)


def main(argv=None) -> int:
    args = parse_args(argv)
    mode = "quick" if args.quick else "soak" if args.soak else "scaling" if args.scaling else "full"
    pg_url = os.environ.get("BENCH_PG", "root@127.0.0.1:5432")
    user, _, hostport = pg_url.rpartition("@")
    host, _, port = hostport.partition(":")
    config = Config(
        db_name=args.db_name, redis_db=args.redis_db, pg_user=user or "root", pg_host=host, pg_port=int(port or 5432)
    )
    out_dir = args.out or (ROOT / "bench" / "results" / ("quick" if args.quick else ""))
    log_dir = Path(tempfile.mkdtemp(prefix="booking-bench-"))
    started = time.time()
    print(f"bench ({mode}): database {config.db_name}, Redis db {config.redis_db}, logs in {log_dir}", file=sys.stderr)

    create_database(config)
    setup_django(config)
    from core.redis import redis_client

    redis_client().flushdb()  # the benchmark's own database index (checked in stack.py)
    sampler = Sampler(interval=2.0 if args.soak else 1.0)
    sampler.track_postgres(_backend_pids(config))
    sampler.start()
    stack = Stack(config, log_dir, sampler)
    results: dict = {"mode": mode, "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    exit_code = 1
    try:
        if args.soak:
            # Worker recycling would hide a leak: the soak runs without it.
            os.environ["WEB_MAX_REQUESTS"] = "0"
        exit_code = run(args, config, stack, sampler, results, started=started, out_dir=out_dir)
    finally:
        stack.stop_all()
        sampler.stop()
        try:
            redis_client().flushdb()
        finally:
            from django.db import connections

            connections.close_all()
            if not args.keep_db:
                drop_database(config)
    if exit_code == 0:
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        print(f"\nprocess logs kept in {log_dir}", file=sys.stderr)
    print(f"\nbench finished in {time.time() - started:.0f} s", file=sys.stderr)
    return exit_code


def run(args, config: Config, stack: Stack, sampler: Sampler, results: dict, *, started: float, out_dir: Path) -> int:
    from bench import data, report, scenarios
    from bench.load import say

    results.update(machine=report.machine(), commit=report.git_commit(), load_before=os.getloadavg()[0])
    sizes = scenarios.Sizes.quick() if args.quick else scenarios.Sizes.full()
    if args.http_seconds:
        sizes.seconds = args.http_seconds

    def step(name: str) -> None:
        print(f"\n[{time.strftime('%H:%M:%S')}] {name}", file=sys.stderr)

    step("starting web, worker and beat from the Procfile")
    stack.start_web()
    stack.start_worker()
    stack.start_beat()
    if not args.soak:
        stack.start_bare()
    results["web_setup"] = _web_setup()
    results["worker_setup"] = f"Procfile worker, {os.environ.get('WORKER_CONCURRENCY', '2')} pool processes"
    results["procfile"] = stack.describe()
    step(f"creating {sizes.users} users and their access tokens")
    users = data.make_users(sizes.users, prefix="bench")
    ctx = scenarios.Context(config, stack, sampler, sizes, users, random.Random(20261128))

    if args.scaling:
        results["noop"] = _step(step, "authenticated no-op baseline", scenarios.noop_rate, ctx)
        label = f"worker scaling ({scenarios.SCALING_SHOWS} shows; 1, 2, 4 worker processes)"
        results["worker_scaling"] = _step(step, label, scenarios.worker_scaling, ctx)
    elif args.soak:
        results["noop"] = _step(step, "authenticated no-op baseline", scenarios.noop_rate, ctx)
        soak_start = time.time()
        step(f"soak: {args.soak_seconds:.0f} s of steady mixed load")
        results["soak"] = scenarios.soak(ctx, args.soak_seconds)
        results["memory_growth"], violations = scenarios.memory_growth(sampler, since=soak_start + 30)
        ctx.violations += violations
    else:
        wanted = set(args.only or SCENARIOS)
        unknown = wanted - set(SCENARIOS)
        if unknown:
            raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
        if "http" in wanted:
            wanted.add("flash_sale")  # GET /bookings/{id} polls the flash sale's bookings
        bookings = []
        if "flash_sale" in wanted:
            results["flash_sale"] = _step(step, "flash sale", scenarios.flash_sale, ctx)
            bookings = results["flash_sale"].pop("_bookings")
        # The no-op (every ratio's baseline) and POST rates are measured in every run.
        step(
            "HTTP throughput, interleaved rounds: no-op, /auth/me, bare DRF me, POST /bookings, seat map, "
            "GET /bookings/{id}"
            if "http" in wanted
            else "authenticated no-op baseline"
        )
        specs = scenarios.http_specs(ctx, bookings)
        if "http" not in wanted:
            specs = {kind: specs[kind] for kind in ("noop", "post")}
        results["http"] = scenarios.http_rounds(ctx, specs)
        if "overload" in wanted:
            results["overload"] = _step(
                step,
                f"overload: POST /bookings open loop at {', '.join(f'{m}x' for m in sizes.overload_multipliers)} "
                f"the sustainable rate, {sizes.overload_connections} connections",
                lambda: scenarios.overload(ctx, sustainable=results["http"]["post"]["rate"]),
            )
        if "many_shows" in wanted:
            results["many_shows"] = _step(step, f"many shows ({sizes.many_shows})", scenarios.many_shows, ctx)
        if "fairness" in wanted:
            label = f"fairness (one show fed by {sizes.fairness_feeders} clients, {sizes.fairness_others} other shows)"
            results["fairness"] = _step(step, label, scenarios.fairness, ctx)
        if "pg_raw" in wanted:
            results["pg_raw"] = _step(step, "raw PostgreSQL submit transaction", scenarios.pg_booking_rate, ctx)
        if "celery_noop" in wanted:
            results["celery_noop"] = _step(step, "Celery no-op task rate", scenarios.celery_noop_rate, ctx)
        if "backlog" in wanted:
            results["backlog"] = _step(step, f"backlog drain ({sizes.backlog})", scenarios.backlog_drain, ctx)
        if sizes.scaling_per_show and "worker_scaling" in wanted:
            label = f"worker scaling ({scenarios.SCALING_SHOWS} shows; 1, 2, 4 worker processes)"
            results["worker_scaling"] = _step(step, label, scenarios.worker_scaling, ctx)
    results["noop_rate"] = results.get("http", results)["noop"]["rate"]
    results["peak_rss"] = sampler.peak_rss()
    results["load_after"] = os.getloadavg()[0]
    results["violations"] = ctx.violations
    results["targets"] = report.targets(results)
    results["duration_s"] = round(time.time() - started)
    paths = report.write(results, out_dir, name=results["mode"])
    say("done")
    print("\n" + report.markdown(results), file=sys.stderr)
    print(f"written: {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    if ctx.violations:
        print(f"FAILED: {len(ctx.violations)} invariant violation(s)", file=sys.stderr)
        return 1
    if args.strict and not all(row["met"] for row in results["targets"]):
        print("FAILED (--strict): a performance target was missed", file=sys.stderr)
        return 2
    return 0


def _backend_pids(config: Config):
    """A function listing the PostgreSQL backends connected to the benchmark's database
    (its own connection, usable from the sampler's thread)."""
    import psycopg2

    state = {}

    def pids() -> list[int]:
        if "conn" not in state:
            state["conn"] = psycopg2.connect(**config.pg_params())
            state["conn"].autocommit = True
        with state["conn"].cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [config.db_name])
            return [row[0] for row in cur.fetchall()]

    return pids


def _step(step, name: str, func, *args):
    step(name)
    return func(*args)


def _web_setup() -> str:
    """The gunicorn settings in effect (the config file evaluated in this environment)."""
    conf = runpy.run_path(str(ROOT / "booking_api" / "config" / "gunicorn.conf.py"))
    return (
        f"gunicorn -c booking_api/config/gunicorn.conf.py: {conf['workers']} x {conf['worker_class']}"
        f"{' x ' + str(conf['threads']) + ' threads' if conf.get('threads', 1) > 1 else ''}"
    )


if __name__ == "__main__":
    sys.exit(main())
