"""Basic auth on every route of Flower, not only on the pages and API calls Flower guards.

Flower 2.2 leaves `/metrics` (every task name, worker and count), `/healthcheck`, its static
files and its login and 404 handlers open even with `basic_auth` set. Called from
booking_api/config/flowerconfig.py, which Flower runs before it builds its application: every handler
in Flower's route table, and the static file handler Tornado adds itself, is replaced by a
subclass that answers 401 before anything else unless the request carries one of the
configured user:password pairs.
"""

import base64
import binascii
import hmac

import flower.urls
from flower.views.auth import LoginHandler
from flower.views.error import NotFoundErrorHandler
from tornado.web import RequestHandler, StaticFileHandler, URLSpec


def _credentials_ok(request, allowed: list[str]) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Basic":
        return False
    try:
        presented = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    # Every pair is compared, in constant time each, so the answer's timing names none.
    matches = [hmac.compare_digest(presented, pair.encode()) for pair in allowed]
    return any(matches)


def _authenticated(handler_class: type[RequestHandler]) -> type[RequestHandler]:
    class Authenticated(handler_class):
        def prepare(self):
            if not _credentials_ok(self.request, list(self.application.options.basic_auth or [])):
                self.set_status(401)
                self.set_header("WWW-Authenticate", 'Basic realm="flower"')
                self.finish("Access denied")
                return None
            return super().prepare()

    Authenticated.__name__ = Authenticated.__qualname__ = f"Authenticated{handler_class.__name__}"
    return Authenticated


def _replacement(handler_class: type[RequestHandler]) -> type[RequestHandler]:
    # LoginHandler's __new__ builds the OAuth provider's handler, or a 404 without one; this
    # config sets no provider (basic auth only), so it is the 404.
    if handler_class is LoginHandler:
        handler_class = NotFoundErrorHandler
    return _authenticated(handler_class)


def require_auth_on_every_route() -> None:
    handlers = flower.urls.handlers
    for index, handler in enumerate(handlers):
        if isinstance(handler, URLSpec):
            handlers[index] = URLSpec(
                handler.regex.pattern, _replacement(handler.handler_class), handler.kwargs, handler.name
            )
        else:
            handlers[index] = (handler[0], _replacement(handler[1]), *handler[2:])
    # Tornado serves /static/, /favicon.ico and /robots.txt itself, with this class.
    flower.urls.settings["static_handler_class"] = _authenticated(StaticFileHandler)
