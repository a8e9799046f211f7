"""Django's PostgreSQL backend with a health check that costs no round trip when there is
nothing to suspect.

With CONN_HEALTH_CHECKS a persistent connection is checked before each request's first
query, so that a connection the server closed meanwhile (PostgreSQL restarted, the session
ended by idle_in_transaction_session_timeout, the backend terminated) is replaced instead of
failing the request. Django checks with `SELECT 1`: one round trip per request, as much as
the query an authenticated request needs. A server that closes a session first sends its
reason (a FATAL message) and then the end of the stream, both of which make the socket
readable; an idle connection left in a clean state after the previous request has nothing
to read. So a connection whose socket has nothing to read is taken as usable at once, and
one that has something (or whose socket cannot be polled) gets Django's full check.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        if self.connection is None or self.connection.closed:
            return False
        try:
            readable, _, _ = select.select([self.connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        if not readable:
            return True
        return super().is_usable()
