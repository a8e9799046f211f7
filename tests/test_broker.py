"""The broker's topology: a show's wake-ups go to one queue, chosen by the show; on RabbitMQ
the queues are quorum queues and publishes are confirmed."""

import subprocess
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import override_settings

from booking_api.config.celery import app
from core import broker
from tests import rabbitmq
from workers.tasks import decide_show, retry_delay

AMQP_URL = "amqp://127.0.0.1:5672/x"


def _routed_queue(show_id: int) -> str:
    # Celery's own router, as apply_async and Task.retry use it (retries carry the same args).
    return app.amqp.router.route({}, decide_show.name, args=[show_id], kwargs={})["queue"].name


@override_settings(BOOKING_QUEUE_SHARDS=4)
def test_a_shows_wake_ups_always_go_to_its_own_queue():
    assert [_routed_queue(show_id) for show_id in (1, 2, 3, 4, 5, 8)] == [
        "bookings.1",
        "bookings.2",
        "bookings.3",
        "bookings.0",
        "bookings.1",
        "bookings.0",
    ]
    assert broker.queue_names() == ["bookings.0", "bookings.1", "bookings.2", "bookings.3", "default"]


@override_settings(BOOKING_QUEUE_SHARDS=1)
def test_one_bookings_queue_by_default():
    assert {_routed_queue(show_id) for show_id in range(1, 20)} == {"bookings"}
    assert app.amqp.router.route({}, "maintenance.recover_pending_bookings", args=[], kwargs={})["queue"].name == (
        "default"
    )


def test_rabbitmq_queues_are_quorum_queues_on_a_topic_exchange():
    for queue in broker.task_queues(AMQP_URL, 4):
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert (queue.durable, queue.auto_delete, queue.exclusive) == (True, False, False)
        # Celery's native delayed delivery (countdowns on quorum queues) needs a topic exchange.
        assert queue.exchange.type == "topic"
    assert {q.exchange.type for q in broker.task_queues("redis://127.0.0.1:6379/0", 4)} == {"direct"}


@override_settings(CELERY_BROKER_URL=AMQP_URL)
def test_retries_on_rabbitmq_wait_whole_seconds():
    # A countdown that truncates to 0 would be rejected by the delayed delivery and dropped.
    delays = [retry_delay(n) for n in range(12)]
    assert all(delay >= 1 and delay == int(delay) for delay in delays), delays


@pytest.mark.skipif(not rabbitmq.base_url(), reason="runs on RabbitMQ only (TEST_AMQP_URL, make test-rabbitmq)")
def test_on_rabbitmq_the_declared_queues_are_quorum_queues_with_confirmed_publishes():
    assert app.conf.broker_transport_options.get("confirm_publish") is True
    with app.connection_for_write() as conn:
        for queue in app.amqp.queues.values():
            queue.bind(conn.default_channel).declare()
    vhost = urlsplit(settings.CELERY_BROKER_URL).path.lstrip("/")
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "type", "durable", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    types = {line.split()[0]: line.split()[1:] for line in listed if line.strip()}
    for name in broker.queue_names():
        assert types[name] == ["quorum", "true"], types
