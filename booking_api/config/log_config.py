"""The logging configuration of every process (read by settings.py): one console handler,
plain key=value lines or JSON, each line carrying the request id (and task id)."""


def logging_config(*, level: str, fmt: str) -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {
                "()": "core.logging.KeyValueFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            },
            "json": {"()": "core.logging.JsonFormatter"},
        },
        # Every line logged during a request or a task carries its request id (and task id).
        "filters": {"context": {"()": "core.logging.ContextFilter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.request": {"level": "ERROR"},
            "django.server": {"level": "WARNING"},
            # Celery's received/succeeded line for every task (the recovery job's every 5 s) would
            # drown the decision lines, which carry the task id anyway; failures stay visible.
            "celery.worker.strategy": {"level": "WARNING"},
            "celery.app.trace": {"level": "WARNING"},
        },
    }
