"""The per-show Redis lock that makes deciding a show's bookings serial.

It is a redis-py Lock: a random token stored under a key that names the show, with a
timeout so that a dead holder cannot block the show forever. It is an optimisation, not the
guarantee: the decider also locks the show row in PostgreSQL, and the unique seat
constraint is the last line.
"""

from django.conf import settings
from redis.lock import Lock

from core.redis import redis_client


def show_lock_key(show_id: int | str) -> str:
    return f"booking:lock:show:{show_id}"


def show_lock(show_id: int) -> Lock:
    return redis_client().lock(
        show_lock_key(show_id), timeout=settings.BOOKING_LOCK_TIMEOUT, blocking=False, thread_local=False
    )


def show_lock_held(show_id: int) -> bool:
    return bool(redis_client().exists(show_lock_key(show_id)))
