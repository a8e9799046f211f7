"""What the current log lines are about: the request id (and, in a worker, the task id).

A request id is taken from `X-Request-ID` or made by the API's middleware, travels to the
workers in the Celery message headers, and is stored on the booking it created, so one
booking can be followed from its request to its decision. Context variables keep the
values per thread and per task without passing them through every call.
"""

import re
import uuid
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy or client library generates (UUIDs, hex, trace ids); anything else is replaced
# so that a client cannot write arbitrary text into the logs.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("task_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def valid_request_id(value: str | None) -> str | None:
    """`value` when it is an acceptable request id, None otherwise."""
    if value and _VALID_REQUEST_ID.match(value):
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def bound(*, request_id: str | None = None, task_id: str | None = None):
    """Set the request id (and task id) for the code inside the block."""
    tokens = [(request_id_var, request_id_var.set(request_id))]
    if task_id is not None:
        tokens.append((task_id_var, task_id_var.set(task_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
