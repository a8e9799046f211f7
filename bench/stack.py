"""The stack under test: a fresh database, the Procfile's processes, and their memory and CPU.

Processes are started from the Procfile's own command lines (web, worker, beat), so the
benchmark measures what `make run` runs. Each runs in its own session and is stopped by
process group; the sampler reads RSS and CPU time of every descendant from /proc.
"""

import contextlib
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    _check_names(config)
    conn = psycopg2.connect(**config.pg_params("postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(config.db_name)))
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config.db_name)))
    conn.close()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=config.env(),
        check=True,
    )


def drop_database(config: Config) -> None:
    _check_names(config)
    conn = psycopg2.connect(**config.pg_params("postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(config.db_name)))
    conn.close()


def procfile() -> dict[str, str]:
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not line.startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


@dataclass
class Proc:
    """One Procfile process (and its children), in its own session."""

    role: str
    command: str
    env: dict
    log_path: Path
    popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        log = self.log_path.open("ab")
        # bash expands the Procfile's ${VAR:-default}; exec keeps the pid the process's own.
        self.popen = subprocess.Popen(
            ["bash", "-c", f"exec {self.command}"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)
        except ProcessLookupError:
            pass

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_until(predicate, *, timeout: float, what: str, proc: Proc | None = None, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{what}: process exited early\n{proc.log()[-3000:]}")
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


# ---- /proc sampling -------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def _rss(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry.name))
    return children


CHILD_ROLE = {"web": "web worker", "worker": "celery pool process", "beat": "beat child"}
ROOT_ROLE = {"web": "web master (gunicorn)", "worker": "celery worker (main)", "beat": "celery beat"}


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
        children = _children_map()
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
            rss, stat = _rss(pid), _stat(pid)
            if rss is None or stat is None:
                continue
            with self._lock:
                self.roles[pid] = role
                self.samples.setdefault(pid, []).append((now, rss))
                self.cpu[pid] = stat[1]

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

    def _env(self, **overrides) -> dict:
        return self.config.env(
            PORT=self.port,
            CELERY_BEAT_SCHEDULE_FILE=self.log_dir / "celerybeat-schedule",
            **overrides,
        )

    def _start(self, name: str, **env) -> Proc:
        self._starts += 1
        proc = Proc(name, self.commands[name], self._env(**env), self.log_dir / f"{name}-{self._starts}.log").start()
        self.procs[name] = proc
        self.sampler.track(name, proc)
        return proc

    def start_web(self) -> None:
        import httpx

        proc = self._start("web")

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=60, what="gunicorn", proc=proc, interval=0.2)

    def start_worker(self, **env) -> None:
        """The Procfile's worker; `env` overrides its environment (WORKER_CONCURRENCY=4)."""
        from bench.tasks import READY_KEY
        from core.redis import redis_client

        redis_client().delete(READY_KEY)
        proc = self._start("worker", **env)
        wait_until(
            lambda: redis_client().get(READY_KEY) == str(proc.pid).encode(), timeout=90, what="celery worker", proc=proc
        )

    def start_beat(self) -> None:
        self._start("beat")

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            proc.stop()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def describe(self) -> dict:
        return {name: shlex.join(["bash", "-c", command]) for name, command in self.commands.items()}
