"""Tools for deterministic two-connection tests: run service code on its own connection in a
thread, hold locks from another connection, pause a transaction at a breakpoint, and see
what a session waits for.

A breakpoint is a trigger that waits on an advisory lock the test holds: the service code
runs unchanged and stops inside its own transaction, holding the locks it took so far,
until the test releases it. Everything waits with bounded deadlines.
"""

import threading
import time
from contextlib import contextmanager

import psycopg2
from django.db import connection

from core.models import Booking

BREAKPOINT_KEY = 9191


def pending_booking(user, show, *, seats: list[str] | None = None) -> Booking:
    """A pending booking as booking_submit writes it, but without queueing its wake-up: a
    Celery worker started by another test (the session's live stack) must not decide it
    behind the test's back."""
    return Booking.objects.create(user=user, show=show, seats=seats or [], quantity=len(seats) if seats else 1)


def _connect():
    db = connection.settings_dict
    return psycopg2.connect(
        dbname=db["NAME"], user=db["USER"] or None, host=db["HOST"] or None, port=db["PORT"] or None
    )


@contextmanager
def holder():
    """A second connection, outside Django, in a transaction the test commits or rolls back."""
    conn = _connect()
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


def execute(conn, sql: str, *params) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


class Background:
    """`fn()` run in a thread on the thread's own Django connection (backend `pid`).

    `lock_timeout` (a PostgreSQL interval, or None to keep the session's own) lets a test
    keep a session waiting as long as the test needs, whatever the configured defaults.
    """

    def __init__(self, fn, *, lock_timeout: str | None = "60s"):
        self.pid: int | None = None
        self.result = None
        self.error: BaseException | None = None
        self.seconds: float | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(fn, lock_timeout), daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the background session did not start"

    def _run(self, fn, lock_timeout) -> None:
        try:
            with connection.cursor() as cursor:
                if lock_timeout is not None:
                    cursor.execute("SELECT set_config('lock_timeout', %s, false)", [lock_timeout])
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self._ready.set()
            started = time.monotonic()
            try:
                self.result = fn()
            finally:
                self.seconds = time.monotonic() - started
        except BaseException as exc:  # noqa: BLE001 - handed to the test by join()
            self.error = exc
        finally:
            self._ready.set()
            connection.close()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float = 30):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"still running after {timeout}s"
        if self.error is not None:
            raise self.error
        return self.result


def waiting_for(pid: int) -> str | None:
    """What the session waits for: 'advisory' (a breakpoint), another lock event
    ('transactionid', 'tuple', 'relation'), or None when it is not waiting on a lock."""
    with _connect() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT wait_event FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", [pid])
        row = cursor.fetchone()
    conn.close()
    return row[0] if row else None


def wait_until_waiting(task: Background, *, timeout: float = 30, on: str | None = None) -> str | None:
    """Wait until `task` waits on a lock (`on`: that wait event only) and return the wait
    event, or return None as soon as it has finished without waiting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = waiting_for(task.pid)
        if event is not None and (on is None or event == on):
            return event
        if task.done():
            return None
        time.sleep(0.02)
    raise AssertionError(f"session {task.pid} neither waited nor finished within {timeout}s")


def pause_trigger(name: str, table: str, event: str, condition: str, lock: int) -> str:
    """SQL for a trigger `name` that makes each `event` (INSERT, UPDATE) of a row of `table`
    matching `condition` (on NEW) wait for the shared advisory lock `lock`: whoever holds
    it exclusively pauses those statements there."""
    return f"""
        CREATE FUNCTION {name}() RETURNS trigger AS $$
        BEGIN
            IF {condition} THEN
                PERFORM pg_advisory_xact_lock_shared({lock});
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}();
    """


@contextmanager
def breakpoint_on(table: str, event: str, condition: str = "true"):
    """Pause every statement that `event`s (INSERT, UPDATE) a row of `table` matching
    `condition` (on NEW) until release() is called. Yields release."""
    with holder() as control:
        control.autocommit = True
        execute(control, "SELECT pg_advisory_lock(%s)", BREAKPOINT_KEY)
        execute(control, pause_trigger("test_breakpoint", table, event, condition, BREAKPOINT_KEY))
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                execute(control, "SELECT pg_advisory_unlock(%s)", BREAKPOINT_KEY)
                released = True

        try:
            yield release
        finally:
            release()
            execute(control, f"DROP TRIGGER test_breakpoint ON {table}; DROP FUNCTION test_breakpoint()")


def poison_booking(booking_id, *, sqlstate: str | None = None) -> None:
    """Make PostgreSQL refuse, on Django's connection, every attempt to confirm one booking
    (raising with `sqlstate` when given): a poison booking. The trigger lives as long as the
    test's transaction (or database)."""
    errcode = f" USING ERRCODE = '{sqlstate}'" if sqlstate else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION test_poison() RETURNS trigger AS $$
            BEGIN
                IF NEW.id = %s::uuid AND NEW.status = 'confirmed' THEN
                    RAISE EXCEPTION 'poison booking'{errcode};
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_poison BEFORE UPDATE ON core_booking
                FOR EACH ROW EXECUTE FUNCTION test_poison();
            """,
            [str(booking_id)],
        )
