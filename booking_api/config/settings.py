"""Django settings for the booking service.

Every setting is read from the environment (django-environ), with defaults that make a
fresh checkout run on loopback with no further setup. Production switches (HTTPS
redirect, HSTS, secure cookies, proxy headers) default to off because a TLS-terminating
proxy sits in front in production and plain HTTP must work on 127.0.0.1.
"""

from ipaddress import ip_network
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from booking_api.config import api, booking, log_config, secrets_policy
from booking_api.config.booking import *  # noqa: F403  (the BOOKING_* settings)
from booking_api.config.envfile import load_env_file
from core import broker

BASE_DIR = Path(__file__).resolve().parents[2]

env = environ.Env()
# A local .env (see .env.example) is read when present; real environment variables win.
load_env_file()

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# The secret key is required in any non-debug run so that production never starts with a
# key that is published in the repository.
if DEBUG:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-insecure-secret-key-only-for-debug-runs")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")

# Demo accounts with published passwords (`seed_demo --with-users`, which `make run` calls)
# are created only in development: with DEBUG on, or with this flag (the .env `make run` writes).
DEMO_USERS = env.bool("DEMO_USERS", default=False)

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_yasg",
    "core",
]

MIDDLEWARE = [
    "booking_api.middleware.RequestIdMiddleware",
    "booking_api.middleware.RequestMetricsMiddleware",
    "booking_api.middleware.DependencyUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Sessions, Django's user and messages serve the admin only (booking_api/middleware.py).
    "booking_api.middleware.AdminSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "booking_api.middleware.AdminAuthenticationMiddleware",
    "booking_api.middleware.AdminMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "booking_api.urls"
WSGI_APPLICATION = "booking_api.config.wsgi.application"
ASGI_APPLICATION = "booking_api.config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The customer booking page's template (booking_api is the HTTP layer, not an app).
        "DIRS": [BASE_DIR / "booking_api" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data stores -----------------------------------------------------------------------

DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://root@127.0.0.1:5432/booking"),
}
# Persistent connections save a connect per request; health checks drop a connection that
# died (PostgreSQL restart) instead of failing the next request with it.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Django's PostgreSQL backend whose health check skips the round trip when the socket shows
# nothing amiss (booking_api/postgres/base.py).
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "booking_api.postgres"
# A dead or unreachable PostgreSQL must turn into a quick 503, never a hanging request.
DATABASES["default"].setdefault("OPTIONS", {}).update({"connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=3)})
# Bounded waits, in milliseconds (0: none), set per session through libpq's `options`. A web
# request waiting on a row that a frozen process holds gives up after DB_LOCK_TIMEOUT_MS
# with a retryable 503 `busy` instead of holding a gunicorn thread for ever; a session idle
# inside a transaction (a frozen holder) is ended, releasing its locks. The workers run with
# their own, longer values (set when a Celery worker starts, see booking_api/config/celery.py).
DB_SESSION_TIMEOUTS = {
    "web": {
        "lock_timeout": env.int("DB_LOCK_TIMEOUT_MS", default=2000),
        "statement_timeout": env.int("DB_STATEMENT_TIMEOUT_MS", default=5000),
        "idle_in_transaction_session_timeout": env.int("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", default=10000),
    },
    "worker": {
        "lock_timeout": env.int("DB_WORKER_LOCK_TIMEOUT_MS", default=10000),
        # Well inside CELERY_TASK_SOFT_TIME_LIMIT, so that a stuck statement ends as a retry.
        "statement_timeout": env.int("DB_WORKER_STATEMENT_TIMEOUT_MS", default=60000),
        "idle_in_transaction_session_timeout": env.int("DB_WORKER_IDLE_IN_TRANSACTION_TIMEOUT_MS", default=10000),
    },
}
# libpq `options` per role: any given in DATABASE_URL, then the role's timeouts.
DB_SESSION_OPTIONS = {
    role: " ".join(
        [DATABASES["default"]["OPTIONS"].get("options", ""), *(f"-c {k}={v}" for k, v in timeouts.items())]
    ).strip()
    for role, timeouts in DB_SESSION_TIMEOUTS.items()
}
DATABASES["default"]["OPTIONS"]["options"] = DB_SESSION_OPTIONS["web"]
# Behind PgBouncer in transaction pooling mode (DB_POOL_MODE=transaction; README "Scaling"):
# a session is no longer the client's, so nothing may depend on one. No server-side cursors
# (they live across statements of a session), and no session options in the startup packet
# (PgBouncer refuses `options`, or drops it silently if told to ignore it): the timeouts are
# set on PgBouncer's server connections instead, by the connect_query of two database
# aliases that `manage.py pgbouncer_databases` writes, one with the web values (the alias in
# DATABASE_URL) and one with the workers' (DB_WORKER_NAME, switched to when a worker starts).
DB_POOL_MODE = env.str("DB_POOL_MODE", default="session")
DB_WORKER_NAME = env.str("DB_WORKER_NAME", default="")
if DB_POOL_MODE == "transaction":
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DB_SESSION_OPTIONS = dict.fromkeys(DB_SESSION_TIMEOUTS, "")
    DATABASES["default"]["OPTIONS"].pop("options", None)

# The release step's migrate (manage.py release_migrate) waits this long for any lock, then
# rolls back and tries again, MIGRATE_ATTEMPTS times in all.
MIGRATE_LOCK_TIMEOUT = env.str("MIGRATE_LOCK_TIMEOUT", default="5s")
MIGRATE_ATTEMPTS = env.int("MIGRATE_ATTEMPTS", default=5)

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Short socket timeouts: a Redis outage must surface as a 503 within a few seconds.
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="booking"),
        "OPTIONS": {
            "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
        },
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, REST framework ----------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = api.AUTH_PASSWORD_VALIDATORS
SIMPLE_JWT = api.simple_jwt(env, secret_key=SECRET_KEY)
REST_FRAMEWORK = api.rest_framework(env)
SWAGGER_SETTINGS = api.SWAGGER_SETTINGS

# --- Bookings and selling: config/booking.py (imported above) -----------------------------

# --- Metrics ----------------------------------------------------------------------------

# Every process (gunicorn workers, Celery pool processes) writes its counters here and
# /metrics adds them up: one directory shared by all the processes of a host, emptied when
# the whole stack starts (never while it runs). Empty: each process counts on its own.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default=str(BASE_DIR / "var" / "metrics"))
# /metrics answers a request with `Authorization: Bearer <METRICS_TOKEN>`, or from an address
# in METRICS_ALLOW_IPS (addresses or networks, e.g. a Prometheus on the private network).
# Neither set: /metrics is refused (403). Behind a proxy every peer is the proxy's address,
# so prefer the token there.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Parsed here so that a typo stops the start instead of failing every scrape.
METRICS_ALLOW_IPS = [str(ip_network(entry, strict=False)) for entry in env.list("METRICS_ALLOW_IPS", default=[])]
# The shows with the most pending bookings are exported one by one; the rest only in total.
METRICS_PENDING_TOP_SHOWS = env.int("METRICS_PENDING_TOP_SHOWS", default=10)

# --- Payment: config/booking.py (imported above) -------------------------------------------

# In development the fake provider charges and its webhooks are signed with a fixed secret.
if DEBUG:
    PAYMENT_FAKE_ALLOWED = True
    PAYMENT_WEBHOOK_SECRET = PAYMENT_WEBHOOK_SECRET or "dev-payment-webhook-secret-only-for-debug-runs"  # noqa: F405
# Without DEBUG, paying shows by default with the fake provider would sell tickets for fake
# money: refused unless explicitly allowed (a staging site).
if not DEBUG and booking.BOOKING_PAYMENT_REQUIRED and PAYMENT_PROVIDER == "fake" and not PAYMENT_FAKE_ALLOWED:  # noqa: F405
    raise ImproperlyConfigured(
        "BOOKING_PAYMENT_REQUIRED=1 with PAYMENT_PROVIDER=fake takes no money; configure a real provider "
        "(README 'Plugging in a real payment provider') or set PAYMENT_FAKE_ALLOWED=1 on a staging site."
    )
# --- Tickets ----------------------------------------------------------------------------

# Signs the ticket codes (core/tickets.py). Its own secret, not DJANGO_SECRET_KEY: rotating
# the Django key (sessions, password resets) must not void every ticket sold, and a ticket
# key is rotated on its own schedule. Required without DEBUG (checked below); a fixed
# development key otherwise.
TICKET_SIGNING_KEY = env.str(
    "TICKET_SIGNING_KEY", default="dev-insecure-ticket-signing-key-only-for-debug-runs" if DEBUG else ""
)
# Rotation: former keys, comma-separated, still accepted at the door (never used to sign).
# Drop one once the shows its tickets were sold for have passed.
TICKET_SIGNING_KEYS_PREVIOUS = env.list("TICKET_SIGNING_KEYS_PREVIOUS", default=[])

# --- Secrets ----------------------------------------------------------------------------

# Without DEBUG, a secret copied from .env.example or the README, or one short enough to
# guess, stops the start: a process that runs with it would be open to anyone who read them.
if not DEBUG:
    for _name, _value, _min_length in (
        ("DJANGO_SECRET_KEY", SECRET_KEY, secrets_policy.SECRET_KEY_MIN_LENGTH),
        ("JWT_SIGNING_KEY", SIMPLE_JWT["SIGNING_KEY"], secrets_policy.SECRET_KEY_MIN_LENGTH),
        # Empty is allowed: /metrics is then refused to every request without an allowed address.
        ("METRICS_TOKEN", METRICS_TOKEN or "", secrets_policy.TOKEN_MIN_LENGTH),
        # Empty is allowed: every webhook is then refused (a deployment that takes no payment).
        ("PAYMENT_WEBHOOK_SECRET", PAYMENT_WEBHOOK_SECRET, secrets_policy.TOKEN_MIN_LENGTH),
        # Required: without it no ticket could be issued or checked in.
        ("TICKET_SIGNING_KEY", TICKET_SIGNING_KEY, secrets_policy.SECRET_KEY_MIN_LENGTH),
        *(
            ("TICKET_SIGNING_KEYS_PREVIOUS", key, secrets_policy.SECRET_KEY_MIN_LENGTH)
            for key in TICKET_SIGNING_KEYS_PREVIOUS
        ),
    ):
        _weakness = _value and secrets_policy.weakness(_value, min_length=_min_length)
        if _weakness or (_name in ("DJANGO_SECRET_KEY", "TICKET_SIGNING_KEY") and not _value):
            raise ImproperlyConfigured(
                f"{_name} {_weakness or 'is empty'}; set a random value "
                "(python -c 'import secrets; print(secrets.token_urlsafe(50))') or DJANGO_DEBUG=1 for development."
            )

# --- Celery -----------------------------------------------------------------------------

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged only after it ran, and a task whose worker process died is
# requeued, so a killed worker loses no wake-up.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per process: a slow drain must not sit on wake-ups other
# processes could run.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=2)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=150)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Must exceed the hard time limit and every retry countdown (ETA tasks sit unacked in
    # the worker), otherwise Redis would hand a running or waiting task to a second worker.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600),
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
}
# RabbitMQ (CELERY_BROKER_URL=amqp://...): quorum queues (core/broker.py) and publisher
# confirms, so that a publish returns only once the broker has the wake-up (on a quorum
# queue: once a majority of its nodes has it). Redis stays for locks, markers and throttles.
if CELERY_BROKER_URL.split("://", 1)[0] in ("amqp", "amqps", "pyamqp"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
    CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_SOCKET_TIMEOUT
# Bookings queues: 1 is the single `bookings` queue; N > 1 splits it by show (core/broker.py).
BOOKING_QUEUE_SHARDS = env.int("BOOKING_QUEUE_SHARDS", default=1)
# Declared by every worker, publisher and passive check alike: quorum queues on RabbitMQ.
CELERY_TASK_QUEUES = broker.task_queues(CELERY_BROKER_URL, BOOKING_QUEUE_SHARDS)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = (
    # A show's wake-ups to the show's bookings queue (CELERY_TASK_QUEUES, core/broker.py).
    "core.broker.route_by_show",
    {
        "bookings.*": {"queue": "bookings"},
        "maintenance.*": {"queue": "default"},
        "payments.*": {"queue": "default"},
        "webhooks.*": {"queue": "default"},
    },
)
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_BEAT_SCHEDULE = {
    "recover-pending-bookings": {
        "task": "maintenance.recover_pending_bookings",
        "schedule": booking.BOOKING_RECOVERY_INTERVAL_SECONDS,
        # A sweep that could not run in time is pointless once the next one is due.
        "options": {"expires": booking.BOOKING_RECOVERY_INTERVAL_SECONDS},
    },
    # Unpaid holds past their deadline: their seats are free within about this interval.
    "expire-holds": {
        "task": "maintenance.expire_holds",
        "schedule": booking.BOOKING_HOLD_SWEEP_SECONDS,
        "options": {"expires": booking.BOOKING_HOLD_SWEEP_SECONDS},
    },
    # Partner webhook deliveries that are due but not queued (core/services/partner_events.py).
    "sweep-partner-webhooks": {
        "task": "webhooks.dispatch",
        "schedule": booking.PARTNER_WEBHOOK_SWEEP_SECONDS,
        "options": {"expires": booking.PARTNER_WEBHOOK_SWEEP_SECONDS},
    },
    # Payments unsettled and refunds not done past PAYMENT_RECONCILE_AFTER_SECONDS: looked up
    # at the provider and applied, so that every charge ends confirmed or refunded.
    "reconcile-payments": {
        "task": "payments.reconcile",
        "schedule": booking.PAYMENT_RECONCILE_INTERVAL_SECONDS,
        "options": {"expires": booking.PAYMENT_RECONCILE_INTERVAL_SECONDS},
    },
    # At fixed times (not every N seconds from beat's start), so that restarts cannot keep
    # postponing them.
    "purge-old-bookings": {
        "task": "maintenance.purge_old_bookings",
        "schedule": crontab(minute=17),
        "options": {"expires": 3600},
    },
    # Expired refresh tokens and their blacklist entries (simplejwt's flushexpiredtokens):
    # every login and refresh adds a row that is useless once the token has expired.
    "flush-expired-tokens": {
        "task": "maintenance.flush_expired_tokens",
        "schedule": crontab(hour=3, minute=41),
        "options": {"expires": 6 * 3600},
    },
}
# How long publishing a wake-up may block the request when Redis is down: the booking row
# is already committed and the recovery job will queue it, so give up quickly.
CELERY_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}

# --- HTTP and security -----------------------------------------------------------------

# Request bodies over this size are refused before parsing (a booking is a few hundred bytes).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_MAX_BODY_BYTES", default=64 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("DJANGO_USE_X_FORWARDED_PROTO", default=False):
    # Only behind a proxy that sets this header itself; otherwise clients could spoof it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The health probes and the Prometheus scrape reach the web process directly, over plain
# HTTP on the internal network, even with redirects on.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# --- I18N, static files -----------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The booking page's script and styles (booking_api/static/booking_page/), beside the apps' own.
STATICFILES_DIRS = [BASE_DIR / "booking_api" / "static"]
# WhiteNoise serves the admin's and Swagger UI's assets from gunicorn; finders let it serve
# them straight from the installed apps when collectstatic has not run (tests, dev).
WHITENOISE_USE_FINDERS = True

# --- Logging ----------------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "plain": one line with key=value fields; "json": one JSON object per line.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = log_config.logging_config(level=LOG_LEVEL, fmt=LOG_FORMAT)

# Routes match with and without a trailing slash themselves; a redirect would turn a POST
# into a GET.
APPEND_SLASH = False

# The worker logs through the LOGGING above (structured fields kept) instead of Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
