"""Private RabbitMQ virtual hosts for test runs on the RabbitMQ broker.

With TEST_AMQP_URL set (e.g. amqp://127.0.0.1:5672, as `make test-rabbitmq`
does), the tests run on RabbitMQ: the session gets a virtual host of its own, and so does
every fault test, created and deleted with rabbitmqctl. Parallel runs on one RabbitMQ never
share a queue, and nothing a run leaves queued outlives it.
"""

import os
import shutil
import subprocess
import uuid
from urllib.parse import urlsplit

BASE_URL_ENV = "TEST_AMQP_URL"


def base_url() -> str:
    return os.environ.get(BASE_URL_ENV, "").rstrip("/")


def new_vhost_url(prefix: str = "booking-test") -> str:
    """The URL of a virtual host that does not exist yet (create() makes it)."""
    return f"{base_url()}/{prefix}-{uuid.uuid4().hex[:12]}"


def _vhost(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _ctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise RuntimeError(f"{BASE_URL_ENV} is set but rabbitmqctl is not on PATH to create a virtual host")
    subprocess.run([ctl, "-q", *args], check=True, capture_output=True, timeout=60)


def create(url: str) -> str:
    vhost, user = _vhost(url), urlsplit(url).username or "guest"
    _ctl("add_vhost", vhost)
    _ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    return url


def delete(url: str) -> None:
    _ctl("delete_vhost", _vhost(url))
