"""Request ids: made or taken at the edge, returned, logged, carried to the worker's log lines."""

import json
import logging
import subprocess
import sys
import uuid

import pytest

from core import context
from core.logging import ContextFilter, JsonFormatter, KeyValueFormatter
from core.models import Booking
from core.show_lock import show_lock
from tests.factories import ShowFactory, UserFactory
from tests.harness.polling import poll_until_final
from tests.harness.procs import ROOT, wait_until
from tests.harness.service import service_env


@pytest.mark.django_db
def test_every_response_carries_a_request_id(api):
    first, second = api.get("/healthz"), api.get("/api/v1/no-such-route")
    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.django_db
def test_a_valid_client_request_id_is_kept_and_a_bad_one_replaced(api):
    assert api.get("/healthz", HTTP_X_REQUEST_ID="edge-7f3a.1:2")["X-Request-ID"] == "edge-7f3a.1:2"
    for bad in ("has space", "x" * 129, "<script>", "-leading-dash"):
        replaced = api.get("/healthz", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
        assert replaced != bad
        assert context.valid_request_id(replaced) == replaced


@pytest.mark.django_db
def test_the_booking_row_keeps_its_submission_request_id(user_api, show):
    response = user_api.post("/api/v1/bookings", {"show": show.pk, "quantity": 1}, HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 202
    assert response["X-Request-ID"] == "req-42"
    assert Booking.objects.get(pk=response.json()["id"]).request_id == "req-42"


def _record(**extra) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "core.bookings", "levelname": "INFO", "msg": "booking decided", **extra})
    ContextFilter().filter(record)
    return record


def test_log_lines_carry_the_bound_request_and_task_ids():
    with context.bound(request_id="req-1", task_id="task-9"):
        entry = json.loads(JsonFormatter().format(_record(booking_id="b-1")))
        plain = KeyValueFormatter("%(message)s").format(_record())
    assert entry["request_id"] == "req-1"
    assert entry["task_id"] == "task-9"
    assert entry["booking_id"] == "b-1"
    assert plain == "booking decided request_id=req-1 task_id=task-9"
    # Outside a request nothing is added; an explicit id (the booking's own) wins.
    assert "request_id" not in json.loads(JsonFormatter().format(_record()))
    with context.bound(request_id="req-of-the-drain"):
        assert json.loads(JsonFormatter().format(_record(request_id="req-of-the-booking")))["request_id"] == (
            "req-of-the-booking"
        )


def _json_lines(text: str) -> list[dict]:
    # gunicorn's and Celery's own start-up lines are not Django logging; every other line is JSON.
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_request_id_appears_in_the_api_and_the_worker_log_of_the_same_booking(live_stack):
    show = ShowFactory(screen__rows=2, screen__seats_per_row=4)
    first_id, second_id = f"trace-{uuid.uuid4().hex}", f"trace-{uuid.uuid4().hex}"
    # Both bookings wait behind a held lock, so one drain (queued by the first request)
    # decides both: the second booking must still be logged with its own request id.
    lock = show_lock(show.pk)
    assert lock.acquire()
    try:
        with live_stack.client(UserFactory()) as client:
            first = client.post(
                "/api/v1/bookings", json={"show": show.pk, "quantity": 1}, headers={"X-Request-ID": first_id}
            )
            second = client.post(
                "/api/v1/bookings", json={"show": show.pk, "quantity": 1}, headers={"X-Request-ID": second_id}
            )
    finally:
        lock.release()
    assert first.headers["X-Request-ID"] == first_id
    assert second.headers["X-Request-ID"] == second_id
    bookings = {first.json()["id"]: first_id, second.json()["id"]: second_id}
    with live_stack.client(UserFactory(is_staff=True)) as staff:
        for booking_id in bookings:
            assert poll_until_final(staff, booking_id)["status"] == "confirmed"

    api_lines = _json_lines(live_stack.web.log())
    for booking_id, request_id in bookings.items():
        accepted = [line for line in api_lines if line.get("booking_id") == booking_id]
        assert [(line["message"], line["request_id"]) for line in accepted] == [("booking accepted", request_id)]

    def worker_lines() -> list[dict]:
        return _json_lines("".join(worker.log() for worker in live_stack.workers))

    drained = wait_until(
        lambda: [line for line in worker_lines() if line["message"] == "show drained" and line["show_id"] == show.pk],
        timeout=10,
        what="the drain's log line",
    )
    assert drained[0]["request_id"] == first_id
    assert drained[0]["booking_id"] == first.json()["id"]
    for booking_id, request_id in bookings.items():
        decided = [
            line for line in worker_lines() if line.get("booking_id") == booking_id and "decided" in line["message"]
        ]
        assert len(decided) == 1
        assert decided[0]["request_id"] == request_id
        assert decided[0]["outcome"] == "confirmed"
        # The task id an operator can look up in Flower.
        assert decided[0]["task_id"]


def test_celery_logs_through_django_logging_whatever_its_loglevel():
    """Celery's own setup (as `celery worker` runs it, default --loglevel WARNING) must leave
    the INFO decision lines and the JSON format of settings.LOGGING in place."""
    code = (
        "import django, logging; django.setup()\n"
        "from booking_api.config.celery import app\n"
        "app.log.setup_logging_subsystem(loglevel='WARNING')\n"
        "logging.getLogger('core.bookings').info('booking decided', extra={'booking_id': 'b-1'})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=service_env(LOG_FORMAT="json", LOG_LEVEL="INFO"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = _json_lines(result.stderr)
    assert [(line["message"], line["booking_id"]) for line in lines] == [("booking decided", "b-1")]
