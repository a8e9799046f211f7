"""Liveness, readiness and the JSON fallbacks for unknown routes and server errors."""

import logging
from functools import wraps

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from booking_api.exceptions import error_body
from core import decision_queue
from core.redis import redis_client

logger = logging.getLogger("booking_api.ops")


def _read_only(view):
    """GET and HEAD only; any other method is a JSON 405. Exempt from CSRF, which would
    otherwise answer an unsafe method with Django's HTML 403 page (these views hold no
    session state to protect)."""

    @csrf_exempt
    @wraps(view)
    def read_only_view(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse(
                error_body("method_not_allowed", f'Method "{request.method}" not allowed.'), status=405
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return read_only_view


@_read_only
@never_cache
def healthz(request):
    """200 while the process serves requests; touches no dependency."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    redis_client().ping()


def _check_broker() -> None:
    if settings.CELERY_BROKER_URL == settings.REDIS_URL:
        _check_redis()
        return
    decision_queue.check_broker(timeout=settings.REDIS_SOCKET_TIMEOUT)


@_read_only
@never_cache
def readyz(request):
    """200 when PostgreSQL, Redis and the broker answer; 503 naming the ones that did not."""
    checks = {"database": _check_database, "redis": _check_redis, "broker": _check_broker}
    results = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = "unavailable"
    failed = [name for name, result in results.items() if result != "ok"]
    if not failed:
        return JsonResponse({"status": "ok", "checks": results})
    response = JsonResponse(
        error_body("service_unavailable", f"Not ready: {', '.join(failed)} unavailable.", {"checks": results}),
        status=503,
    )
    response["Retry-After"] = "2"
    return response


# Also the catch-all route: a POST or DELETE to an unknown path is a JSON 404, not a CSRF 403.
@csrf_exempt
def not_found(request, exception=None, **kwargs):
    return JsonResponse(error_body("not_found", f"No route for {request.path}."), status=404)


def server_error(request, *args, **kwargs):
    return JsonResponse(error_body("server_error", "An unexpected error occurred."), status=500)


def bad_request(request, exception=None, *args, **kwargs):
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)


def permission_denied(request, exception=None, *args, **kwargs):
    return JsonResponse(error_body("permission_denied", "You do not have permission to do this."), status=403)
