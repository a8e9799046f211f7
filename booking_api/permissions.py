from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission

from core import selectors


class IsStaffOrReadOnly(BasePermission):
    """Catalogue reads are public; writes are for staff (401 anonymous, 403 others)."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class IsScanner(BasePermission):
    """Check-in at the door: staff, or users in the `scanners` group (401 anonymous, 403 others)."""

    def has_permission(self, request, view) -> bool:
        return selectors.user_is_scanner(user=request.user)


class CredentialsInBody(BaseAuthentication):
    """For the auth endpoints, whose credentials travel in the body: a stale or broken
    Authorization header must not block a login or a refresh, yet a refusal is still a 401
    with a WWW-Authenticate challenge rather than DRF's fallback 403."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
