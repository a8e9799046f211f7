"""Rate limits kept in Redis as fixed-window counters.

DRF's stock throttles store every request's timestamp in one cache entry and rewrite it on
each request, which grows with the rate; an INCR per window is one cheap round trip and
shared by every web process. The client address comes from DRF's get_ident, which trusts
X-Forwarded-For only for NUM_PROXIES hops (0 by default), so rotating that header does not
escape the limit.
"""

import time

from rest_framework.throttling import SimpleRateThrottle

from core.redis import redis_client


class _FixedWindowThrottle(SimpleRateThrottle):
    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        counter = f"booking:throttle:{key}:{window}"
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, self.duration + 1, nx=True)
        count, _ = pipe.execute()
        if count <= self.num_requests:
            return True
        self._wait = (window + 1) * self.duration - now
        return False

    def wait(self) -> float:
        return getattr(self, "_wait", float(self.duration))


class AnonThrottle(_FixedWindowThrottle):
    """Per client address, for requests without a valid token."""

    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return f"anon:{self.get_ident(request)}"


class UserThrottle(_FixedWindowThrottle):
    """Per user, for authenticated requests."""

    scope = "user"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return None


class AuthThrottle(_FixedWindowThrottle):
    """Login and signup attempts per client address (password guessing)."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return f"auth:{self.get_ident(request)}"
