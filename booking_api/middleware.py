"""Middleware that keeps every error JSON: outages and a busy database become 503s, oversized bodies 413s, and
an unexpected exception a logged JSON 500 (never a DEBUG page or a stack trace). And the
request id that every log line of a request carries."""

import io
import logging
import time

from django.conf import settings
from django.http import JsonResponse

from booking_api.exceptions import dependency_error_response, error_body
from core import context, metrics

logger = logging.getLogger("booking_api.errors")


class RequestIdMiddleware:
    """Outermost: give the request an id (the client's or proxy's `X-Request-ID` when it is a
    sane token, a new one otherwise), bind it for the logs and the tasks queued by the request,
    and return it in the response's `X-Request-ID`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        header = request.headers.get(context.REQUEST_ID_HEADER)
        request_id = context.valid_request_id(header) or context.new_request_id()
        request.request_id = request_id
        with context.bound(request_id=request_id):
            response = self.get_response(request)
        response[context.REQUEST_ID_HEADER] = request_id
        return response


class RequestMetricsMiddleware:
    """Count every answered request by method, route pattern (not the path: ids would make a
    series per booking) and status, and time it. Outside the error middleware, so 413s, 503s
    and 500s are counted too. Every label comes from a closed set (core.metrics)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.http_request_observed(
            method=request.method,
            route=_route(request),
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response


def _route(request) -> str:
    """The URL pattern that matched (`match.route` is built from the patterns in urls.py,
    never from the path), or "unmatched"."""
    match = getattr(request, "resolver_match", None)
    # The catch-all JSON 404 route, and requests answered before routing (413, static files).
    if match is None or match.route in ("", "^"):
        return "unmatched"
    # Both spellings of a route (with and without the trailing slash) are one series.
    return "/" + match.route.rstrip("/")


class DependencyUnavailableMiddleware:
    """Outermost middleware: it sees exceptions from every view, DRF or not."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        too_big = _declared_body_too_large(request)
        if too_big:
            return JsonResponse(
                error_body(
                    "request_too_large", f"The request body exceeds {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
                ),
                status=413,
            )
        return self.get_response(request)

    def process_exception(self, request, exception):
        response = dependency_error_response(exception)
        if response is not None:
            return response
        if request.path.startswith("/admin/"):
            return None  # the admin keeps Django's own error pages
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return JsonResponse(error_body("server_error", "An unexpected error occurred."), status=500)


def _declared_body_too_large(request) -> bool:
    # DRF's parsers read the stream without Django's DATA_UPLOAD_MAX_MEMORY_SIZE check, so
    # the declared length is checked here; WSGI never reads past Content-Length.
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class ChunkedRequestBody:
    """WSGI middleware (wraps the Django application in wsgi.py) for bodies sent with
    `Transfer-Encoding: chunked`: they have no Content-Length, and Django reads no body
    without one, so such a request was handled as if it had none (a valid booking was
    refused as empty). The server de-chunks the body; it is read here, at most one byte past
    DATA_UPLOAD_MAX_MEMORY_SIZE, and handed on with its length, so that the limit above
    answers 413 for it like for any other body."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
            environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        return self.app(environ, start_response)
