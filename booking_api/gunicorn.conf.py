"""gunicorn settings for the `web` process (Procfile: gunicorn -c booking_api/gunicorn.conf.py)."""

import json
import os

from gunicorn import util

from booking_api.envfile import load_env_file

load_env_file()

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Threaded workers keep client connections alive and overlap one request's database and
# Redis round trips with another's Python: on the benchmark (bench/, README "Performance")
# 3 x 4 threads served about 1.8x the bookings per second of 3 sync workers.
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = os.environ.get("WEB_WORKER_CLASS", "gthread")
# A request never needs this long; a stuck worker is replaced instead of hanging clients.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
# Recycle workers now and then so that slow leaks cannot accumulate.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "20000"))
max_requests_jitter = 2000
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
errorlog = "-"
wsgi_app = "booking_api.wsgi:application"


def _write_json_error(sock, status_int, reason, mesg):
    """gunicorn answers requests it cannot parse (a URL or header over its limits, broken
    chunked framing, ...) itself, before Django sees them, with an HTML page; this keeps the
    API's one error shape there too. Replaces gunicorn.util.write_error, which the workers
    call for those answers."""
    body = json.dumps(
        {"code": reason.lower().replace(" ", "_"), "message": f"{reason}: {mesg}" if mesg else reason, "details": {}}
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin1") + body)


util.write_error = _write_json_error


def post_worker_init(worker):
    """Warm what the first booking of each worker would otherwise pay for (~200 ms): the
    Celery app and its task registry, and the broker connection of the producer pool."""
    try:
        from workers.dispatch import warm_publisher

        warm_publisher()
    except Exception:  # a cold start is slower, never fatal
        worker.log.warning("could not warm the Celery publisher; the first booking will do it", exc_info=True)
