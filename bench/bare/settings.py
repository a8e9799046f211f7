"""Settings of the bare project: Django's, DRF's and simplejwt's defaults, except what the
comparison needs to be fair (the service's database with persistent connections, its
signing key so that the benchmark's tokens are valid here too)."""

import environ

env = environ.Env()

SECRET_KEY = env.str("DJANGO_SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.bare.urls"
DATABASES = {"default": env.db_url("DATABASE_URL")}
# The service keeps its connections too; a connection per request would measure connects.
DATABASES["default"]["CONN_MAX_AGE"] = 60
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}
SIMPLE_JWT = {"SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY), "AUTH_HEADER_TYPES": ("Bearer",)}
