"""gunicorn settings for the `web` process (Procfile: gunicorn -c booking_api/config/gunicorn.conf.py)."""

import json
import os

from gunicorn import util

from booking_api.config.envfile import load_env_file

load_env_file()

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Threaded workers keep client connections alive and overlap one request's database and
# Redis round trips with another's Python (measured in README "Performance").
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = os.environ.get("WEB_WORKER_CLASS", "gthread")
# A request never needs this long; a stuck worker is replaced instead of hanging clients.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
# Recycle workers now and then so that slow leaks cannot accumulate (child_exit below merges
# the metrics files each one leaves).
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
errorlog = "-"
wsgi_app = "booking_api.config.wsgi:application"


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
    """Warm what the first booking of each worker would otherwise pay for: the broker
    connection of the Celery producer pool and the Redis client's."""
    try:
        from core.decision_queue import warm_publisher

        warm_publisher()
    except Exception:  # a cold start is slower, never fatal
        worker.log.warning("could not warm the Celery publisher; the first booking will do it", exc_info=True)


def child_exit(server, worker):
    """In the arbiter, once a worker has exited (recycled after max_requests, timed out or
    killed): merge its metrics files into the archive, so that they do not pile up and slow
    every scrape down (core/metrics_archive.py)."""
    try:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "booking_api.config.settings")
        from django.conf import settings

        from core.metrics_archive import archive_exited

        if settings.PROMETHEUS_MULTIPROC_DIR:
            archive_exited(settings.PROMETHEUS_MULTIPROC_DIR)
    except Exception:  # the next exit merges them, nothing is lost meanwhile
        server.log.warning("could not archive the metrics files of exited workers", exc_info=True)
