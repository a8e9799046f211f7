"""The HTTP layer's framework settings (read by settings.py): password validation, simplejwt,
Django REST framework and drf-yasg."""

from datetime import timedelta

import environ

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


def simple_jwt(env: environ.Env, *, secret_key: str) -> dict:
    return {
        "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
        "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
        "ROTATE_REFRESH_TOKENS": True,
        "BLACKLIST_AFTER_ROTATION": True,
        # Tokens carry a fingerprint of the password hash: changing the password ends them all.
        "CHECK_REVOKE_TOKEN": True,
        "UPDATE_LAST_LOGIN": False,
        "AUTH_HEADER_TYPES": ("Bearer",),
        "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=secret_key),
        "ALGORITHM": "HS256",
    }


def rest_framework(env: environ.Env) -> dict:
    return {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "booking_api.authentication.JWTAuthentication",
        ],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "DEFAULT_PARSER_CLASSES": ["booking_api.parsers.JSONParser"],
        "DEFAULT_PAGINATION_CLASS": "booking_api.pagination.StandardPagination",
        "PAGE_SIZE": 20,
        "DEFAULT_FILTER_BACKENDS": [],
        "EXCEPTION_HANDLER": "booking_api.exceptions.api_exception_handler",
        "DEFAULT_THROTTLE_CLASSES": [
            "booking_api.throttles.AnonThrottle",
            "booking_api.throttles.UserThrottle",
        ],
        "DEFAULT_THROTTLE_RATES": {
            "anon": env.str("THROTTLE_ANON", default="600/min"),
            "user": env.str("THROTTLE_USER", default="1200/min"),
            # Password guessing is the abuse to stop on login and signup, per client address.
            "auth": env.str("THROTTLE_AUTH", default="60/min"),
            # The payment provider's webhooks, per sending address: not a user's requests (no
            # token), and a provider sends in bursts, but still bounded.
            "webhook": env.str("THROTTLE_WEBHOOK", default="3000/min"),
            # Failed logins per username, from any address (LoginUsernameThrottle).
            "login_username": env.str("THROTTLE_LOGIN_USERNAME", default="10/hour"),
            # Check-ins per scanning account: a door with several lanes may share one account,
            # each lane scanning a ticket a second or faster; 100/s leaves room for a stadium gate.
            "checkin": env.str("THROTTLE_CHECKIN", default="6000/min"),
        },
        # X-Forwarded-For is trusted only for the number of proxies configured here; with 0
        # (the default) the peer address identifies the client, so rotating the header
        # cannot dodge the throttle.
        "NUM_PROXIES": env.int("DJANGO_NUM_PROXIES", default=0),
        "TEST_REQUEST_DEFAULT_FORMAT": "json",
        "DATETIME_FORMAT": "iso-8601",
        "COERCE_DECIMAL_TO_STRING": True,
    }


SWAGGER_SETTINGS = {
    "SECURITY_DEFINITIONS": {
        "Bearer": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            # In backticks: Swagger UI renders the description as Markdown, where a bare <token> vanishes.
            "description": "JWT access token from POST /api/v1/auth/login, as `Bearer <access token>`.",
        }
    },
    "USE_SESSION_AUTH": False,
    "PERSIST_AUTH": True,
    "DEFAULT_INFO": "booking_api.openapi.API_INFO",
    "DEFAULT_AUTO_SCHEMA_CLASS": "booking_api.openapi.BookingAutoSchema",
}
