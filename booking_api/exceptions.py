"""The one place that maps errors to HTTP: every 4xx and 5xx body has the same shape.

    {"code": "<stable machine code>", "message": "<human text>", "details": {...}}

`details` holds field errors for validation failures ({"seats": ["..."]}) and is empty
otherwise. Domain errors carry their own code; unknown exceptions stay 500s (bugs), and a
PostgreSQL or Redis outage is a 503 with Retry-After, never a 500. A healthy PostgreSQL
that made a statement give up (lock or statement timeout, deadlock) is a 503 `busy` with
Retry-After: the request may be retried as it is, and the database is not said to be down.
"""

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response

from core import db_errors
from core.exceptions import (
    Conflict,
    DependencyUnavailable,
    DomainError,
    NotAuthenticated,
    NotFound,
    PaymentDeclined,
    TooManyRequests,
    ValidationFailed,
)

logger = logging.getLogger("booking_api.errors")

DOMAIN_STATUS = {
    ValidationFailed: status.HTTP_400_BAD_REQUEST,
    NotAuthenticated: status.HTTP_401_UNAUTHORIZED,
    NotFound: status.HTTP_404_NOT_FOUND,
    PaymentDeclined: status.HTTP_402_PAYMENT_REQUIRED,
    Conflict: status.HTTP_409_CONFLICT,
    TooManyRequests: status.HTTP_429_TOO_MANY_REQUESTS,
    DependencyUnavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}
UNAVAILABLE_RETRY_AFTER = "2"
BUSY_RETRY_AFTER = "1"
# The challenge of every 401 (RFC 9110 requires one).
BEARER_CHALLENGE = 'Bearer realm="api"'


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"code": code, "message": message, "details": details or {}}


def dependency_of(exc: BaseException) -> str | None:
    """Which dependency an exception says is unreachable, or None if it is not an outage."""
    if db_errors.is_unavailable(exc):
        return "database"
    if isinstance(exc, RedisError):
        return "redis"
    if isinstance(exc, BrokerError):
        return "broker"
    return None


def busy_response(failure: db_errors.DbFailure) -> JsonResponse:
    logger.warning("database busy: %s", failure)
    response = JsonResponse(
        error_body(
            "busy",
            "What this request needs is held by other work right now; retry shortly.",
            {"reason": str(failure)},
        ),
        status=503,
    )
    response["Retry-After"] = BUSY_RETRY_AFTER
    return response


def dependency_error_response(exc: BaseException) -> JsonResponse | None:
    """The 503 for an exception saying a dependency is down or the database is busy, or None."""
    if db_errors.is_contention(exc):
        return busy_response(db_errors.classify(exc))
    dependency = dependency_of(exc)
    return unavailable_response(dependency) if dependency is not None else None


def unavailable_response(dependency: str) -> JsonResponse:
    logger.warning("dependency unavailable: %s", dependency)
    response = JsonResponse(
        error_body(
            "service_unavailable",
            f"The service is temporarily unavailable ({dependency}); retry shortly.",
            {"dependency": dependency},
        ),
        status=503,
    )
    response["Retry-After"] = UNAVAILABLE_RETRY_AFTER
    return response


def _plain(detail):
    """ErrorDetail trees to plain JSON (lists of strings, dicts of those)."""
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_plain(item) for item in detail]
    return str(detail)


def _from_api_exception(exc: exceptions.APIException) -> tuple[str, str, dict]:
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        details = _plain(detail) if isinstance(detail, dict) else {"non_field_errors": _plain(detail)}
        return "validation_error", "The request is invalid.", details
    if isinstance(detail, dict) and "detail" in detail:
        # simplejwt's InvalidToken: {"detail", "code", "messages"}
        return str(detail.get("code") or exc.default_code), str(detail["detail"]), {}
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    return code, str(detail), {}


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER."""
    headers = {}
    if isinstance(exc, DomainError):
        http_status = DOMAIN_STATUS.get(type(exc)) or next(
            (code for cls, code in DOMAIN_STATUS.items() if isinstance(exc, cls)), 400
        )
        body = error_body(exc.code, exc.message, exc.details)
        if http_status == status.HTTP_401_UNAUTHORIZED:
            headers["WWW-Authenticate"] = BEARER_CHALLENGE
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, DependencyUnavailable):
            headers["Retry-After"] = UNAVAILABLE_RETRY_AFTER
    elif (response := dependency_error_response(exc)) is not None:
        return response
    elif isinstance(exc, Http404):
        http_status, body = 404, error_body("not_found", "Not found.")
    elif isinstance(exc, PermissionDenied):
        http_status, body = 403, error_body("permission_denied", "You do not have permission to do this.")
    elif isinstance(exc, exceptions.APIException):
        http_status = exc.status_code
        body = error_body(*_from_api_exception(exc))
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    else:
        return None  # a bug: the middleware turns it into a logged JSON 500
    return Response(body, status=http_status, headers=headers)
