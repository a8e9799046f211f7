"""The old import path of the process harness, for tests written against it: new code
imports tests.harness.procs, .service and .polling."""

from tests.harness.polling import FINAL, poll_until_final  # noqa: F401
from tests.harness.procs import BIN, ROOT, Proc, free_port, wait_until  # noqa: F401
from tests.harness.service import broker_at, healthy, service_env, start_beat, start_web, start_worker  # noqa: F401
