"""The broker's topology: which queues exist, and which one a show's wake-ups go to.

Redis (the default) and RabbitMQ (CELERY_BROKER_URL=amqp://...) carry the same queues: the
`default` queue (maintenance) and the bookings queues. With BOOKING_QUEUE_SHARDS=N > 1 the
bookings queue is split into `bookings.0` .. `bookings.<N-1>` and a show's wake-ups always
go to `bookings.<show_id mod N>`: the first publish, every retry and the recovery job's
re-queue alike (a router that reads the show id). One show's messages then sit in one FIFO
queue, while different shows spread over queues, and so over RabbitMQ nodes (each quorum
queue has its own leader) and over the worker hosts that consume them.

Serial, ordered decisions per show never depend on this routing: the Redis show lock and the
PostgreSQL show row lock make a show's drains serial, and a drain decides the oldest accepted
booking first. Routing only keeps a show's wake-ups from scattering, and spreads the load.

On RabbitMQ the queues are quorum queues (replicated, durable; Raft on the cluster's nodes)
bound to one topic exchange: Celery's native delayed delivery, which carries the retry
countdowns of quorum queues inside the broker, routes through topic exchanges only.
"""

import contextlib
import math

from django.conf import settings
from kombu import Exchange, Queue

DEFAULT_QUEUE = "default"
DECIDE_TASK = "bookings.decide_show"
EXCHANGE = "booking"


def is_amqp(url: str) -> bool:
    return url.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")


def booking_queues(shards: int | None = None) -> list[str]:
    shards = settings.BOOKING_QUEUE_SHARDS if shards is None else shards
    return ["bookings"] if shards <= 1 else [f"bookings.{k}" for k in range(shards)]


def booking_queue_for(show_id: int) -> str:
    queues = booking_queues()
    return queues[int(show_id) % len(queues)]


def queue_names() -> list[str]:
    """Every queue a worker consumes by default (a worker may be given a subset with -Q)."""
    return [*booking_queues(), DEFAULT_QUEUE]


def route_by_show(name, args, kwargs, options, task=None, **kw):
    """Celery router (CELERY_TASK_ROUTES): a show's wake-ups to the show's bookings queue."""
    if name == DECIDE_TASK and args:
        return {"queue": booking_queue_for(args[0])}
    return None


def retry_countdown(seconds: float) -> float:
    """A retry's countdown as the broker can carry it. RabbitMQ's native delayed delivery
    (what Celery uses for countdowns on quorum queues) counts whole seconds and rejects a
    countdown that truncates to 0, dropping the message: at least one second there."""
    if is_amqp(settings.CELERY_BROKER_URL):
        return float(max(1, math.ceil(seconds)))
    return seconds


def task_queues(broker_url: str, shards: int) -> list[Queue]:
    """CELERY_TASK_QUEUES (built by the settings, hence the arguments)."""
    names = [*booking_queues(shards), DEFAULT_QUEUE]
    if not is_amqp(broker_url):
        # What Celery would create by itself on Redis: a direct exchange per queue.
        return [Queue(name, Exchange(name), routing_key=name) for name in names]
    exchange = Exchange(EXCHANGE, type="topic", durable=True)
    return [
        Queue(name, exchange, routing_key=name, durable=True, queue_arguments={"x-queue-type": "quorum"})
        for name in names
    ]


def message_counts(conn, queues: list[str]) -> dict[str, int]:
    """Messages waiting (not yet delivered to a worker) per queue, read with a passive declare;
    a missing queue counts 0 (Redis keeps no empty list)."""
    from kombu.exceptions import ChannelError

    if conn.transport.driver_type != "amqp":
        channel = conn.default_channel
        counts = {}
        for queue in queues:
            try:
                counts[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:
                counts[queue] = 0
        return counts
    # RabbitMQ closes the channel of a passive declare that names a missing queue: one
    # short-lived channel per queue, never the connection's default channel.
    counts = {}
    for queue in queues:
        channel = conn.channel()
        try:
            counts[queue] = channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:
            counts[queue] = 0
        finally:
            with contextlib.suppress(Exception):  # already closed by the broker
                channel.close()
    return counts
