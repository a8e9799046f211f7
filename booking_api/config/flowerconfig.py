"""Flower's settings (`celery -A workers flower --conf=booking_api/config/flowerconfig.py`).

Basic auth is required: Flower shows task arguments and can control workers, so it does not
start without FLOWER_BASIC_AUTH ("user:password", comma-separated for several users), nor,
unless DJANGO_DEBUG=1, with a password that is a template value or shorter than 16
characters. Every route answers only with those credentials (booking_api/config/flower_auth.py).
"""

import os

import environ
from prometheus_client import values

from booking_api.config import secrets_policy
from booking_api.config.envfile import load_env_file
from booking_api.config.flower_auth import require_auth_on_every_route

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
if not environ.Env().bool("DJANGO_DEBUG", default=False):
    for _pair in basic_auth:
        _user, _, _password = _pair.partition(":")
        _weakness = secrets_policy.weakness(_password, min_length=secrets_policy.TOKEN_MIN_LENGTH)
        if _weakness:
            raise SystemExit(f"FLOWER_BASIC_AUTH: the password of {_user!r} {_weakness}; choose a random one.")
require_auth_on_every_route()
port = int(os.environ.get("FLOWER_PORT", "5555"))
address = os.environ.get("FLOWER_ADDRESS", "127.0.0.1")
# Keep enough task history to find a booking's task by its arguments.
max_tasks = int(os.environ.get("FLOWER_MAX_TASKS", "50000"))
purge_offline_workers = 300
