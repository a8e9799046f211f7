"""The stack under test: a fresh database, the Procfile's processes, and their memory and CPU.

Processes are started from the Procfile's own command lines (web, worker, beat), so the
benchmark measures what `make run` runs. Each runs in its own session and is stopped by
process group; the sampler reads RSS and CPU time of every descendant from /proc.
"""

import contextlib
import os
import secrets
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

from tests.harness.procs import BIN, ROOT, Proc, children_map, free_port, proc_stat, wait_until
from tests.harness.service import healthy

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Config:
    """Where the benchmark runs: its own database and Redis database index."""

    db_name: str
    redis_db: int
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "root"
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    ticket_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))

    @property
    def database_url(self) -> str:
        return f"postgres://{self.pg_user}@{self.pg_host}:{self.pg_port}/{self.db_name}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.redis_host}:{self.redis_port}/{self.redis_db}"

    def pg_params(self, dbname: str | None = None) -> dict:
        return {
            "host": self.pg_host,
            "port": self.pg_port,
            "user": self.pg_user,
            "dbname": dbname or self.db_name,
            "connect_timeout": 5,
        }

    def env(self, **overrides) -> dict:
        """Environment of every process of the stack (and of the benchmark itself)."""
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            DJANGO_SECRET_KEY=self.secret,
            TICKET_SIGNING_KEY=self.ticket_key,
            DJANGO_DEBUG="0",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            # BENCH_BROKER_URL: another broker (amqp://... for RabbitMQ); Redis by default.
            CELERY_BROKER_URL=os.environ.get("BENCH_BROKER_URL") or self.redis_url,
            CACHE_KEY_PREFIX="booking-bench",
            LOG_LEVEL=env.get("BENCH_LOG_LEVEL", "INFO"),
            PYTHONUNBUFFERED="1",
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        )
        env.update({key: str(value) for key, value in overrides.items()})
        return env


def _check_names(config: Config) -> None:
    # The benchmark drops and flushes what it is given: refuse anything that looks like a
    # development or test store.
    if "bench" not in config.db_name:
        raise SystemExit(f"refusing to use database {config.db_name!r}: its name must contain 'bench'")
    if config.redis_db in (0, 15):
        raise SystemExit("refusing Redis database 0 (development) or 15 (tests); pass another --redis-db")


def create_database(config: Config) -> None:
    """Drop and create the benchmark's own database, then migrate it."""
    _admin(config, "DROP DATABASE IF EXISTS {} WITH (FORCE)", "CREATE DATABASE {}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=config.env(),
        check=True,
    )


def drop_database(config: Config) -> None:
    _admin(config, "DROP DATABASE IF EXISTS {} WITH (FORCE)")


def _admin(config: Config, *statements: str) -> None:
    """Run statements about the benchmark's database ({} is its name) from `postgres`."""
    _check_names(config)
    conn = psycopg2.connect(**config.pg_params("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(sql.SQL(statement).format(sql.Identifier(config.db_name)))
    finally:
        conn.close()


def procfile() -> dict[str, str]:
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not line.startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


# ---- /proc sampling -------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user and system) of a process so far, or None if it is gone."""
    stat = proc_stat(pid)
    return None if stat is None else (int(stat[11]) + int(stat[12])) / CLK_TCK


def _rss(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


CHILD_ROLE = {"web": "web worker", "worker": "celery pool process", "beat": "beat child", "bare": "bare DRF worker"}
ROOT_ROLE = {
    "web": "web master (gunicorn)",
    "worker": "celery worker (main)",
    "beat": "celery beat",
    "bare": "bare DRF master (gunicorn)",
}
# The bare DRF + simplejwt project (bench/bare), the reference of GET /auth/me.
BARE_COMMAND = "gunicorn -c bench/bare/gunicorn.conf.py"


class Sampler:
    """Samples RSS and CPU time of every process of the stack (and of the benchmark) each
    `interval` seconds in a thread; keeps every sample for the memory checks."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.roots: dict[str, Proc] = {}
        self.samples: dict[int, list[tuple[float, int]]] = {}
        self.roles: dict[int, str] = {}
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def track(self, name: str, proc: Proc) -> None:
        with self._lock:
            self.roots[name] = proc

    def track_postgres(self, database_pids) -> None:
        """Also account the PostgreSQL backends serving the benchmark's database
        (database_pids() lists them)."""
        self._database_pids = database_pids

    def processes(self) -> dict[int, str]:
        """pid -> role of every live process of the stack, and the benchmark itself."""
        children = children_map()
        found = {os.getpid(): "benchmark client"}
        lister = getattr(self, "_database_pids", None)
        if lister is not None:
            # Accounting only: a failed look-up is never fatal.
            with contextlib.suppress(Exception):
                found.update(dict.fromkeys(lister(), "postgres backend"))
        with self._lock:
            roots = dict(self.roots)
        for name, proc in roots.items():
            if not proc.alive():
                continue
            found[proc.pid] = ROOT_ROLE.get(name, name)
            stack = list(children.get(proc.pid, []))
            while stack:
                pid = stack.pop()
                found[pid] = CHILD_ROLE.get(name, f"{name} child")
                stack.extend(children.get(pid, []))
        return found

    def sample(self) -> None:
        now = time.time()
        for pid, role in self.processes().items():
            rss, cpu = _rss(pid), _cpu_seconds(pid)
            if rss is None or cpu is None:
                continue
            with self._lock:
                self.roles[pid] = role
                self.samples.setdefault(pid, []).append((now, rss))
                self.cpu[pid] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds used so far by each role (live processes, as last sampled)."""
        self.sample()
        totals: dict[str, float] = {}
        with self._lock:
            for pid, seconds in self.cpu.items():
                role = self.roles[pid]
                totals[role] = totals.get(role, 0.0) + seconds
        return totals

    def peak_rss(self) -> dict[str, dict]:
        """Per role: the peak RSS of any one process, and how many processes had the role."""
        peaks: dict[str, dict] = {}
        with self._lock:
            for pid, samples in self.samples.items():
                role = self.roles[pid]
                entry = peaks.setdefault(role, {"peak_mib": 0.0, "processes": 0})
                entry["processes"] += 1
                entry["peak_mib"] = max(entry["peak_mib"], max(rss for _, rss in samples) / 2**20)
        return {role: {**v, "peak_mib": round(v["peak_mib"], 1)} for role, v in sorted(peaks.items())}

    def series(self) -> dict[int, tuple[str, list[tuple[float, int]]]]:
        with self._lock:
            return {pid: (self.roles[pid], list(samples)) for pid, samples in self.samples.items()}


class Stack:
    """The Procfile's web, worker and beat processes against the benchmark's database."""

    def __init__(self, config: Config, log_dir: Path, sampler: Sampler):
        self.config = config
        self.log_dir = log_dir
        self.sampler = sampler
        self.commands = procfile()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, Proc] = {}
        self._starts = 0

    def _env(self, **extra) -> dict:
        return self.config.env(
            PORT=self.port,
            CELERY_BEAT_SCHEDULE_FILE=self.log_dir / "celerybeat-schedule",
            **extra,
        )

    def _start(self, name: str, command: str | None = None, **env) -> Proc:
        self._starts += 1
        # bash expands the Procfile's ${VAR:-default}; exec keeps the pid the process's own.
        argv = ["bash", "-c", f"exec {command or self.commands[name]}"]
        proc = Proc(name, argv, self._env(**env), self.log_dir / f"{name}-{self._starts}.log").start()
        self.procs[name] = proc
        self.sampler.track(name, proc)
        return proc

    def start_web(self) -> None:
        proc = self._start("web")
        wait_until(lambda: healthy(self.base_url), timeout=60, what="gunicorn", proc=proc, interval=0.2)

    def start_bare(self) -> None:
        """The bare DRF project on a port of its own (its `GET /me` is 401 without a token)."""
        import httpx

        port = free_port()
        proc = self._start("bare", BARE_COMMAND, BARE_PORT=port)
        self.bare_url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{self.bare_url}/me", timeout=1).status_code == 401
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=60, what="bare DRF gunicorn", proc=proc, interval=0.2)

    def start_worker(self, **env) -> None:
        """The Procfile's worker; `env` overrides its environment (WORKER_CONCURRENCY=4)."""
        from bench.tasks import READY_KEY
        from core.redis import redis_client

        redis_client().delete(READY_KEY)
        proc = self._start("worker", **env)
        wait_until(
            lambda: redis_client().get(READY_KEY) == str(proc.pid).encode(),
            timeout=90,
            what="celery worker",
            proc=proc,
            interval=0.05,
        )

    def start_beat(self) -> None:
        self._start("beat")

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            proc.stop(timeout=20)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def describe(self) -> dict:
        return {name: shlex.join(["bash", "-c", command]) for name, command in self.commands.items()}
