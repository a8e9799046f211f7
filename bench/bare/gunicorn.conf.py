"""gunicorn for the bare project: the service's settings (booking_api/config/gunicorn.conf.py,
evaluated in the same environment), with gunicorn's stock threaded worker (the service's
worker class adds admission control to it) and none of the service's hooks."""

import os
import runpy
from pathlib import Path

_service = runpy.run_path(str(Path(__file__).resolve().parents[2] / "booking_api" / "config" / "gunicorn.conf.py"))

bind = f"127.0.0.1:{os.environ['BARE_PORT']}"
workers = _service["workers"]
threads = _service["threads"]
worker_class = "gthread"
timeout = _service["timeout"]
graceful_timeout = _service["graceful_timeout"]
keepalive = _service["keepalive"]
max_requests = _service["max_requests"]
max_requests_jitter = _service["max_requests_jitter"]
errorlog = "-"
wsgi_app = "bench.bare.wsgi:application"
