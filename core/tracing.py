"""The request id travels with every task: into the message headers when a task is published
during a request, and back into the logging context while the worker runs it.

So the worker's log lines of a drain carry the id of the request that queued it, and its
`task_id`, which an operator can open in Flower.
"""

from celery.signals import before_task_publish, task_postrun, task_prerun

from core import context

HEADER = "request_id"
_bound: dict[str, list] = {}


@before_task_publish.connect
def add_request_id_header(headers=None, **kwargs) -> None:
    request_id = context.current_request_id()
    if headers is not None and request_id and HEADER not in headers:
        headers[HEADER] = request_id


@task_prerun.connect
def bind_task_context(task_id=None, task=None, **kwargs) -> None:
    request_id = context.valid_request_id(getattr(task.request, HEADER, None)) if task is not None else None
    _bound[task_id] = [
        (context.request_id_var, context.request_id_var.set(request_id)),
        (context.task_id_var, context.task_id_var.set(task_id)),
    ]


@task_postrun.connect
def unbind_task_context(task_id=None, **kwargs) -> None:
    for var, token in reversed(_bound.pop(task_id, [])):
        var.reset(token)
