"""Log formatters that keep the structured fields passed as `extra=`.

`KeyValueFormatter` (the default) appends them as key=value; `JsonFormatter` writes one JSON
object per line (LOG_FORMAT=json) for log collectors. `ContextFilter` adds the request id
(and, in a worker, the task id) of the code that logs, so every line can be traced.
"""

import json
import logging

from core.context import request_id_var, task_id_var

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


def _extras(record: logging.LogRecord) -> dict:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD and not key.startswith("_")}


class ContextFilter(logging.Filter):
    """Add `request_id` and `task_id` to every record logged while they are set.

    A value passed explicitly with `extra=` wins: the drain logs each booking with the id of
    the request that submitted it, not the one that queued the drain."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        task_id = task_id_var.get()
        if task_id is not None and not hasattr(record, "task_id"):
            record.task_id = task_id
        return True


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{key}={value}" for key, value in _extras(record).items())
        return f"{line} {extras}" if extras else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
