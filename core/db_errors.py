"""One reading of database errors, shared by the API's error mapping and the workers.

psycopg2 reports two different things as OperationalError: PostgreSQL cannot be reached
(refused or lost connection, shutdown, no free connection slot), and one statement of a
healthy database gave up because other work held what it needed (a lock timeout, a
statement timeout, a deadlock, a serialization failure). The first is an outage: a 503
"database unavailable", and the workers retry the drain. The second is contention: the
request is answered with its own retryable code, and the decider retries the drain without
counting an attempt against any booking, since the booking did nothing wrong.
"""

from enum import StrEnum

from django.db import InterfaceError, OperationalError


class DbFailure(StrEnum):
    UNAVAILABLE = "unavailable"
    LOCK_TIMEOUT = "lock_timeout"
    STATEMENT_TIMEOUT = "statement_timeout"
    DEADLOCK = "deadlock"
    SERIALIZATION_FAILURE = "serialization_failure"


# SQLSTATEs of contention: the database is healthy, this statement lost a wait.
_CONTENTION = {
    "55P03": DbFailure.LOCK_TIMEOUT,  # lock_not_available (lock_timeout, NOWAIT)
    "57014": DbFailure.STATEMENT_TIMEOUT,  # query_canceled (statement_timeout, a cancel)
    "40P01": DbFailure.DEADLOCK,  # deadlock_detected
    "40001": DbFailure.SERIALIZATION_FAILURE,  # serialization_failure
}
CONTENTION = frozenset(_CONTENTION.values())

# SQLSTATEs of an OperationalError that mean the server or the session is going away:
# connection exceptions (class 08), shutdowns, a server still starting, no free connection,
# and a session ended by idle_in_transaction_session_timeout or idle_session_timeout.
_UNAVAILABLE_PREFIXES = ("08", "57P01", "57P02", "57P03", "53300", "25P03", "57P05")


def sqlstate(exc: BaseException) -> str | None:
    return getattr(exc.__cause__, "pgcode", None) or getattr(exc, "pgcode", None)


def classify(exc: BaseException) -> DbFailure | None:
    """What a database error says, or None when it is an error of the work itself (a
    constraint, bad data, a bug) or not a database error at all.

    An OperationalError with no SQLSTATE or an unknown one counts as unavailable:
    it is most often a connection that failed before PostgreSQL could say why.
    """
    if isinstance(exc, InterfaceError):
        return DbFailure.UNAVAILABLE
    code = sqlstate(exc)
    if code in _CONTENTION:
        # A deadlock or serialization failure may also arrive as another DatabaseError
        # subclass (psycopg2 maps class 40 to TransactionRollbackError, an OperationalError).
        return _CONTENTION[code]
    if not isinstance(exc, OperationalError):
        return None
    if code is None or code.startswith(_UNAVAILABLE_PREFIXES):
        return DbFailure.UNAVAILABLE
    return None


def is_contention(exc: BaseException) -> bool:
    return classify(exc) in CONTENTION


def is_unavailable(exc: BaseException) -> bool:
    return classify(exc) is DbFailure.UNAVAILABLE
