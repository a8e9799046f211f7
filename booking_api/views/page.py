"""The customer booking page at `/`: one HTML shell and a static script that talks to the
public API under /api/v1 only (booking_api/static/booking_page/app.js). The page holds no
data and no business rule: every movie, seat, price and booking it shows comes from the API
in the browser, with the user's own token."""

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from booking_api.exceptions import error_body

# The page runs only its own files from this origin: no inline script or style, no
# third-party host (the machine may be offline, and nothing else should run with a user's
# token in reach). QR codes are shown from `blob:` URLs: the script fetches each PNG with the
# user's token. `data:` is the empty favicon.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@csrf_exempt
def booking_page(request):
    """GET/HEAD: the page. Any other method is the JSON 405 every other route answers
    (CSRF exempt so that such a request gets that answer, not Django's HTML 403)."""
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse(error_body("method_not_allowed", f'Method "{request.method}" not allowed.'), status=405)
        response["Allow"] = "GET, HEAD"
        return response
    response = render(request, "booking_page/index.html")
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    # The shell is tiny and names its assets; revalidating it keeps a deploy's new script in step.
    response["Cache-Control"] = "no-cache"
    return response
