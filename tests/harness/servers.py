"""Private servers for tests: a PostgreSQL cluster and a Redis server of their own
(on free loopback ports, in temporary directories), and a TCP proxy that can delay, hold
or cut a connection. The shared servers on 5432/6379 are never stopped or flushed.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg2
import redis

from tests.harness.procs import free_port, wait_until

PG_BIN = Path(os.environ.get("FAULTS_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"  # PostgreSQL refuses to run as root


def _as_pg_user(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *args]
    return args


def _owned_tempdir(prefix: str) -> Path:
    # Not under pytest's tmp_path: its parents are private to root, and the cluster runs
    # as the postgres user.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(path, PG_USER, PG_USER)
    return path


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory, on its own port, owned by this test."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.log_path = root / "postgres.log"
        self.port = free_port()

    @classmethod
    def initdb(cls) -> "PrivatePostgres":
        cluster = cls(_owned_tempdir("booking-faults-pg-"))
        subprocess.run(
            _as_pg_user(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(cluster.data),
                    "-A",
                    "trust",
                    "-U",
                    "root",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return cluster

    def clone(self) -> "PrivatePostgres":
        """A copy of this (stopped) cluster, with its databases, on a new port."""
        copy = PrivatePostgres(_owned_tempdir("booking-faults-pg-"))
        subprocess.run(["cp", "-a", str(self.data), str(copy.data)], check=True)
        return copy

    def start(self) -> "PrivatePostgres":
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c log_min_messages=warning -c log_line_prefix='%m [%p] '"
        )
        subprocess.run(
            _as_pg_user(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log_path),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_pg_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"]),
            check=False,
            capture_output=True,
        )

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, db: str = "booking") -> str:
        return f"postgres://root@127.0.0.1:{self.port}/{db}"

    @contextlib.contextmanager
    def connect(self, db: str = "booking"):
        """An autocommit connection, closed on exit (psycopg2's own `with` would not close it)."""
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="root", dbname=db, connect_timeout=3)
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def destroy(self) -> None:
        if self.is_running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A redis-server without persistence: a restart starts it empty, as after a crash."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.popen: subprocess.Popen | None = None

    def start(self) -> "PrivateRedis":
        log = (self.root / f"redis-{self.port}.log").open("ab")
        self.popen = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._answers, timeout=10, what=f"redis on {self.port}")
        return self

    def kill(self) -> None:
        """SIGKILL: everything in memory (queued messages, locks, markers) is gone."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target port on loopback, in a thread of its own.

    `delay` seconds of latency is added to every chunk in each direction (order kept);
    `hold()` stops forwarding without closing anything (a black hole), `cut()` resets every
    connection and refuses new ones, `restore()` forwards again.
    """

    def __init__(self, target_port: int, *, delay: float = 0.0):
        self.target_port = target_port
        self.delay = delay
        self.mode = "forward"
        self._transports: set = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"proxy-{target_port}", daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def hold(self) -> None:
        self.mode = "hold"

    def cut(self) -> None:
        self.mode = "cut"
        self._loop.call_soon_threadsafe(self._abort_all)

    def restore(self) -> None:
        self.mode = "forward"

    def close(self) -> None:
        self.cut()
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _abort_all(self) -> None:
        for transport in list(self._transports):
            transport.abort()

    async def _handle(self, reader, writer):
        if self.mode == "cut":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._transports |= {writer.transport, up_writer.transport}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for transport in (writer.transport, up_writer.transport):
                self._transports.discard(transport)
                transport.abort()

    async def _pipe(self, reader, writer) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                if data is None:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                while True:
                    if self.mode == "cut":
                        return
                    wait = 0.02 if self.mode == "hold" else due - time.monotonic()
                    if wait <= 0:
                        break
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        delivery = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.delay, data))
        finally:
            queue.put_nowait((0.0, None))
            await delivery
