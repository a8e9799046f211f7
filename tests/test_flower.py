"""Flower, as operators run it: behind basic auth, showing each booking task's arguments."""

import subprocess

import httpx
import pytest

from tests.factories import ShowFactory, UserFactory
from tests.harness.polling import poll_until_final
from tests.harness.procs import BIN, ROOT, Proc, free_port, wait_until
from tests.harness.service import service_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CREDENTIALS = ("operator", "flower-test-pass")
FLOWER = [str(BIN / "celery"), "-A", "workers", "flower", "--conf=booking_api/config/flowerconfig.py"]


@pytest.fixture
def flower(live_stack):
    """A real `celery flower` with the project's config, started before the tasks it should see."""
    port = free_port()
    proc = Proc(
        "flower",
        FLOWER,
        service_env(FLOWER_PORT=port, FLOWER_BASIC_AUTH=":".join(CREDENTIALS)),
        live_stack.log_dir / f"flower-{port}.log",
    ).start()
    base_url = f"http://127.0.0.1:{port}"

    def answering():
        try:
            return httpx.get(f"{base_url}/healthcheck", timeout=1).status_code in (200, 401)
        except httpx.HTTPError:
            return False

    try:
        wait_until(answering, timeout=30, what="flower", proc=proc)
        yield base_url
    finally:
        proc.stop()


def test_flower_refuses_requests_without_the_right_credentials(flower):
    assert httpx.get(f"{flower}/", timeout=5).status_code == 401
    assert httpx.get(f"{flower}/api/tasks", timeout=5).status_code == 401
    assert httpx.get(f"{flower}/", auth=("operator", "wrong"), timeout=5).status_code == 401
    assert httpx.get(f"{flower}/", auth=CREDENTIALS, timeout=5).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/healthcheck",
        "/static/css/flower.css",
        "/favicon.ico",
        "/login",
        "/logout",
        "/api/workers",
        "/tasks/datatable",
        "/no-such-page",
    ],
)
def test_every_route_needs_the_credentials(flower, path):
    """Flower itself leaves /metrics (task names, workers, counts), /healthcheck, its static
    files and its login and 404 pages open even with basic_auth set."""
    refused = httpx.get(f"{flower}{path}", timeout=5)
    assert refused.status_code == 401, refused.text[:200]
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert httpx.get(f"{flower}{path}", auth=("operator", "wrong"), timeout=5).status_code == 401
    assert httpx.get(f"{flower}{path}", auth=CREDENTIALS, timeout=5).status_code != 401


def test_flower_metrics_answer_with_the_credentials(flower):
    response = httpx.get(f"{flower}/metrics", auth=CREDENTIALS, timeout=5)
    assert response.status_code == 200
    assert "flower_" in response.text


def test_a_bookings_task_is_named_and_found_by_its_booking_id(flower, live_stack):
    show = ShowFactory(screen__rows=2, screen__seats_per_row=4)
    with live_stack.client(UserFactory()) as client:
        accepted = client.post(
            "/api/v1/bookings", json={"show": show.pk, "quantity": 1}, headers={"X-Request-ID": "flower-req-1"}
        )
        booking_id = accepted.json()["id"]
        poll_until_final(client, booking_id)

    def found():
        # Flower's own search syntax, as an operator would type it in the tasks page.
        response = httpx.get(
            f"{flower}/api/tasks",
            params={"taskname": "bookings.decide_show", "search": f"kwargs:booking_id={booking_id}"},
            auth=CREDENTIALS,
            timeout=5,
        )
        response.raise_for_status()
        tasks = list(response.json().values())
        # The drain lingers briefly for more bookings after deciding this one (core/services/drain.py).
        return tasks if tasks and all(t["state"] == "SUCCESS" for t in tasks) else None

    tasks = wait_until(found, timeout=20, what="flower to list the booking's task")
    assert len(tasks) == 1
    task = tasks[0]
    assert task["name"] == "bookings.decide_show"
    assert task["args"] == f"[{show.pk}]"
    assert booking_id in task["kwargs"]
    assert "flower-req-1" in task["kwargs"]
    assert task["state"] == "SUCCESS"
    # Flower counted those events in memory, not in metric files of the working directory.
    assert not list(ROOT.glob("*.db"))


def assert_flower_refuses_to_start(**env) -> None:
    env = service_env(FLOWER_PORT=free_port(), **env)
    result = subprocess.run(FLOWER, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr + result.stdout


def test_flower_does_not_start_without_basic_auth():
    # Empty rather than unset, so that a developer's .env cannot fill it in.
    assert_flower_refuses_to_start(FLOWER_BASIC_AUTH="")


@pytest.mark.parametrize(
    "credentials", ["operator:change-me-too", "operator:short-pass", "operator:aaaaaaaaaaaaaaaaaaaa"]
)
def test_flower_does_not_start_with_a_template_or_short_password(credentials):
    assert_flower_refuses_to_start(FLOWER_BASIC_AUTH=credentials, DJANGO_DEBUG="0")
