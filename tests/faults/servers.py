"""The old import path of the private servers, for tests written against it: new code
imports tests.harness.servers and tests.harness.procs."""

from tests.harness.procs import alive, children, tcp_client_ports  # noqa: F401
from tests.harness.servers import PG_BIN, PrivatePostgres, PrivateRedis, TcpProxy  # noqa: F401
