"""Flower's settings (`celery -A workers flower --conf=workers/flowerconfig.py`).

Basic auth is required: Flower shows task arguments and can control workers, so it does not
start without FLOWER_BASIC_AUTH ("user:password", comma-separated for several users).
"""

import os

from prometheus_client import values

from booking_api.envfile import load_env_file

load_env_file()

# Flower counts nothing for the service's /metrics and serves its own metrics at its own
# /metrics, from memory: keep it out of the directory that web, worker and beat share. The
# empty setting turns the booking metrics off here; prometheus_client already chose its
# (multiprocess) value class on import if the variable was set, so choose again before Flower
# creates its metrics, or it would write files into the working directory.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = ""
values.ValueClass = values.MutexValue

_credentials = os.environ.get("FLOWER_BASIC_AUTH", "").strip()
if not _credentials or ":" not in _credentials:
    raise SystemExit("FLOWER_BASIC_AUTH must be set to user:password; Flower does not run without auth.")

basic_auth = [pair.strip() for pair in _credentials.split(",") if pair.strip()]
port = int(os.environ.get("FLOWER_PORT", "5555"))
address = os.environ.get("FLOWER_ADDRESS", "127.0.0.1")
# Keep enough task history to find a booking's task by its arguments.
max_tasks = int(os.environ.get("FLOWER_MAX_TASKS", "50000"))
purge_offline_workers = 300
