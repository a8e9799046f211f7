"""The one domain error type. The REST layer maps it to HTTP in booking_api/exceptions.py."""


class DomainError(Exception):
    """A business rule refused the operation; `code` is stable and machine-readable."""

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class ValidationFailed(DomainError):
    """The request does not make sense for this show or layout (HTTP 400)."""

    code = "validation_error"


class NotAuthenticated(DomainError):
    """The credentials (a token) are not, or no longer, valid (HTTP 401)."""

    code = "not_authenticated"


class NotFound(DomainError):
    """The object does not exist, or is not the caller's to see (HTTP 404)."""

    code = "not_found"


class Conflict(DomainError):
    """The object is in a state that forbids the operation (HTTP 409)."""

    code = "conflict"


class PaymentDeclined(DomainError):
    """The payment provider refused the charge (HTTP 402)."""

    code = "payment_declined"


class TooManyRequests(DomainError):
    """A per-user limit refuses the operation for now (HTTP 429 with Retry-After)."""

    code = "too_many_requests"
    retry_after = 1


class DependencyUnavailable(DomainError):
    """PostgreSQL, Redis or the broker cannot be reached (HTTP 503)."""

    code = "service_unavailable"
