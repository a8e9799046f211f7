"""Rate limits kept in Redis as fixed-window counters.

DRF's stock throttles store every request's timestamp in one cache entry and rewrite it on
each request, which grows with the rate; an INCR per window is one cheap round trip and
shared by every web process. The client address comes from DRF's get_ident, which trusts
X-Forwarded-For only for NUM_PROXIES hops (0 by default), so rotating that header does not
escape the limit. An IPv6 client is keyed by its /64: one subscriber or host usually holds a
whole /64 and can pick any of its 2^64 addresses, so a per-address key would not limit it.

The counter is incremented and given its expiry by one Lua script (Redis 2.6+), not by
`EXPIRE ... NX`, which needs Redis 7: the service supports Redis 6.2 and newer.
"""

import hashlib
import time
import unicodedata
from functools import cache
from ipaddress import ip_address

from rest_framework.throttling import SimpleRateThrottle

from core.redis import redis_client

# INCR, and set the expiry with the window's first hit: atomic, so a counter can never be
# left without an expiry (a client locked out for good).
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
"""
# Give back one hit, only while the window's counter still exists (a DECR on an expired key
# would create a counter without an expiry).
_GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('DECR', KEYS[1])
end
return 0
"""
# Where the per-username throttle leaves the counter it charged, for forgive_login_attempt.
_LOGIN_COUNTER_ATTR = "_booking_login_attempt_counter"


@cache
def _script(source: str):
    """The script's EVALSHA caller, made once per process (it hashes the source); it loads
    the script into a Redis that does not have it (a restarted one) by itself."""
    return redis_client().register_script(source)


def address_key(ident: str) -> str:
    """The throttle key of a client address: an IPv4 address whole, an IPv6 address by its
    /64 network (an IPv4-mapped IPv6 address as its IPv4 address)."""
    try:
        address = ip_address(ident)
    except ValueError:
        return ident[:100]  # not an address (a proxy's odd header): keyed as sent, bounded
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        prefix = int(address) >> 64 << 64
        return f"{ip_address(prefix)}/64"
    return str(address)


def username_key(username) -> str | None:
    """The throttle key of a submitted username: NFKC-normalised and case-folded (signup
    refuses usernames that differ only in case), hashed so that a key is short and Redis
    holds no usernames."""
    if not isinstance(username, str) or not username.strip():
        return None
    normalised = unicodedata.normalize("NFKC", username).strip().casefold()
    return "login_username:" + hashlib.sha256(normalised.encode()).hexdigest()[:32]


class _FixedWindowThrottle(SimpleRateThrottle):
    def allow_request(self, request, view) -> bool:
        self.counter = None
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        self.counter = f"booking:throttle:{key}:{window}"
        count = _script(_HIT)(keys=[self.counter], args=[self.duration + 1], client=redis_client())
        if count <= self.num_requests:
            return True
        self._wait = (window + 1) * self.duration - now
        return False

    def get_ident(self, request) -> str:
        return address_key(super().get_ident(request))

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


class CheckinThrottle(_FixedWindowThrottle):
    """Check-ins per scanning account (THROTTLE_CHECKIN), instead of the per-user rate: a
    door's few accounts scan for a whole queue of people."""

    scope = "checkin"

    def get_cache_key(self, request, view):
        # Only scanners get here (the permission check runs first): always a user.
        return f"checkin:{request.user.pk}"


class AuthThrottle(_FixedWindowThrottle):
    """Login and signup attempts per client address (password guessing), for the API and
    the admin's login page alike."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return f"auth:{self.get_ident(request)}"


class LoginUsernameThrottle(_FixedWindowThrottle):
    """Failed login attempts per username, whatever address they come from, so that a
    guesser rotating addresses (a botnet, an IPv6 range) cannot brute-force one account.

    Every attempt is charged when it arrives (concurrent guesses cannot slip past the limit)
    and a successful login gives its charge back (forgive_login_attempt), so only failures
    count: an account's owner who logs in often is never limited. Once an account's failures
    reach the limit, every login for it is refused until the window ends, the right password
    too (otherwise the answer would tell the guesser which password is right)."""

    scope = "login_username"

    def get_cache_key(self, request, view):
        data = request.data if hasattr(request, "data") else request.POST
        return username_key(data.get("username") if hasattr(data, "get") else None)

    def allow_request(self, request, view) -> bool:
        allowed = super().allow_request(request, view)
        setattr(request, _LOGIN_COUNTER_ATTR, self.counter)
        return allowed


def forgive_login_attempt(request) -> None:
    """A login succeeded: give back the charge LoginUsernameThrottle took for it."""
    counter = getattr(request, _LOGIN_COUNTER_ATTR, None)
    if counter:
        _script(_GIVE_BACK)(keys=[counter], client=redis_client())
        setattr(request, _LOGIN_COUNTER_ATTR, None)


class WebhookThrottle(_FixedWindowThrottle):
    """The payment provider's webhook requests per sending address (instead of the anonymous
    users' limit: a provider delivering a burst of results is not a client to slow down)."""

    scope = "webhook"

    def get_cache_key(self, request, view):
        return f"webhook:{self.get_ident(request)}"
