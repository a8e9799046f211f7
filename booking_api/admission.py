"""Admission control: under overload the excess is answered at once with `503 overloaded`
and `Retry-After`, so that the requests admitted stay fast.

gunicorn's threaded worker hands every request that arrives (on a new or a kept-alive
connection) to its thread pool, whose queue has no bound: when requests arrive faster than
the threads serve them, the queue, and every request's wait in it, grows until clients time
out. `AdmissionThreadWorker` counts, per process, the requests admitted and not yet done
(queued or running). A request that arrives while `WEB_ADMISSION_LIMIT` are admitted is
marked to be shed, and so is one that waited longer than `WEB_ADMISSION_MAX_WAIT_MS` in the
queue. `AdmissionControl`, the outermost WSGI layer, answers a marked request
before Django sees it (no authentication, no database, no Redis): a few hundred microseconds.
The health probes and `/metrics` are never shed: an orchestrator must see a busy process as
alive, and the scrape is what shows the overload.

This module is imported by gunicorn's arbiter (the worker class) before Django is set up, so
it imports nothing of Django at module level.
"""

import json
import os
import threading
import time
import uuid
from concurrent import futures

from gunicorn.workers.gthread import ThreadWorker

# Requests admitted (queued to the threads or running) per process beyond which a new one is
# shed; by default 3 per thread. Above the threads, so that a short burst queues instead of
# being refused, and small enough that an admitted request waits for a few others only (4
# per thread gave an accepted p99 of 0.85-0.94 s at 5-10x the sustainable rate, 3 per
# thread 0.57-0.71 s: README "Overload and the request path").
ADMISSION_PER_THREAD = 3
ADMISSION_LIMIT = int(os.environ.get("WEB_ADMISSION_LIMIT", "0"))
# A request that waited longer than this for a thread is shed too (0: never by its wait):
# the requests served then stay within about this plus their own time, even when each one
# is slower than usual (a loaded host, a slow database), which the count alone cannot see.
ADMISSION_MAX_WAIT = int(os.environ.get("WEB_ADMISSION_MAX_WAIT_MS", "300")) / 1000
# Threads per process that answer the shed requests (parsing a request and writing a 503).
SHED_THREADS = 2
RETRY_AFTER = os.environ.get("WEB_ADMISSION_RETRY_AFTER", "1")
# Answered whatever the load: liveness, readiness and the scrape that shows the overload.
NEVER_SHED = frozenset({"/healthz", "/readyz", "/metrics"})

_current = threading.local()


class AdmissionThreadWorker(ThreadWorker):
    """gunicorn's `gthread` worker, counting the requests it has admitted (see the module).

    A request marked to be shed is handed to a small pool of its own rather than queued
    behind the admitted ones: its answer is then immediate even when every thread of the main
    pool is held (a slow database), and so is a health probe that arrives meanwhile."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._admitted = 0
        self._admitted_lock = threading.Lock()
        self._limit = ADMISSION_LIMIT or ADMISSION_PER_THREAD * self.cfg.threads
        self._shed_pool = None

    def init_process(self):
        self._shed_pool = futures.ThreadPoolExecutor(max_workers=SHED_THREADS, thread_name_prefix="shed")
        super().init_process()

    def handle_quit(self, sig, frame):
        self._shed_pool.shutdown(wait=False)
        super().handle_quit(sig, frame)

    def enqueue_req(self, conn):
        # Main thread: one call per request to read (a new connection, or a kept-alive one
        # that became readable), before it waits in a pool's queue.
        with self._admitted_lock:
            admit = self._admitted < self._limit
            if admit:
                self._admitted += 1
        conn.booking_admission = (admit, time.monotonic())
        if admit:
            super().enqueue_req(conn)
            return
        fs = self._shed_pool.submit(self.handle, conn)
        fs.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def handle(self, conn):
        admitted, queued_at = getattr(conn, "booking_admission", (True, None))
        _current.state = (admitted, queued_at)
        try:
            return super().handle(conn)
        finally:
            _current.state = None
            if admitted:
                with self._admitted_lock:
                    self._admitted -= 1


def shed_reason(environ) -> str | None:
    """Why the request this thread is serving must be shed, or None to serve it."""
    state = getattr(_current, "state", None)
    if state is None or environ.get("PATH_INFO") in NEVER_SHED:
        return None
    admitted, queued_at = state
    if not admitted:
        return "limit"
    if ADMISSION_MAX_WAIT and queued_at is not None and time.monotonic() - queued_at > ADMISSION_MAX_WAIT:
        return "wait"
    return None


_BODY = json.dumps(
    {
        "code": "overloaded",
        "message": "The service is receiving more requests than it can serve; retry after Retry-After seconds.",
        "details": {},
    }
).encode()


class AdmissionControl:
    """WSGI middleware, outermost (wsgi.py): answers the requests the worker marked to be shed
    with the API's error shape, a `Retry-After` and a request id, and counts them."""

    def __init__(self, app):
        from core import context, metrics

        self.app = app
        self._context = context
        self._metrics = metrics

    def __call__(self, environ, start_response):
        reason = shed_reason(environ)
        if reason is None:
            return self.app(environ, start_response)
        request_id = self._context.valid_request_id(environ.get("HTTP_X_REQUEST_ID")) or uuid.uuid4().hex
        self._metrics.http_request_shed(reason=reason)
        start_response(
            "503 Service Unavailable",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(_BODY))),
                ("Retry-After", RETRY_AFTER),
                (self._context.REQUEST_ID_HEADER, request_id),
            ],
        )
        return [_BODY]
