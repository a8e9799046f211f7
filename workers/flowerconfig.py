"""Flower's settings (`celery -A workers flower --conf=workers/flowerconfig.py`).

Basic auth is required: Flower shows task arguments and can control workers, so it does not
start without FLOWER_BASIC_AUTH ("user:password", comma-separated for several users).
"""

import os

from booking_api.envfile import load_env_file

load_env_file()

# Flower loads the Celery app (and so the booking metrics) but counts nothing of its own for
# /metrics: keep it out of the directory the web, worker and beat processes share. Flower
# serves its own metrics at its /metrics.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = ""

_credentials = os.environ.get("FLOWER_BASIC_AUTH", "").strip()
if not _credentials or ":" not in _credentials:
    raise SystemExit("FLOWER_BASIC_AUTH must be set to user:password; Flower does not run without auth.")

basic_auth = [pair.strip() for pair in _credentials.split(",") if pair.strip()]
port = int(os.environ.get("FLOWER_PORT", "5555"))
address = os.environ.get("FLOWER_ADDRESS", "127.0.0.1")
# Keep enough task history to find a booking's task by its arguments.
max_tasks = int(os.environ.get("FLOWER_MAX_TASKS", "50000"))
purge_offline_workers = 300
