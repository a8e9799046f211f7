"""Security properties of the code and the configuration: bandit finds nothing of medium or
high severity, `check --deploy` is clean with the production switches on, DEBUG is off and
a secret key is required by default, and no secret is committed."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.procs import BIN, ROOT

# Production: behind a TLS-terminating proxy, with the switches the README lists.
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "booking_api.config.settings",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_DEBUG": "0",
    "DJANGO_ALLOWED_HOSTS": "booking.example.com",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
    "DJANGO_SECURE_COOKIES": "1",
    "DJANGO_USE_X_FORWARDED_PROTO": "1",
}
# Reads the settings as a fresh process would, without the developer's .env file.
SHOW_SETTINGS = (
    "import pathlib, booking_api.config.envfile as f; f.ENV_FILE = pathlib.Path('/nonexistent');"
    "import django; django.setup(); from django.conf import settings as s;"
    "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE)"
)


def _clean_env(**env) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "JWT_"))}
    return {**base, **env}


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_clean_env(**env), capture_output=True, text=True, check=False
    )


def test_bandit_finds_nothing_of_medium_or_high_severity():
    result = subprocess.run(
        [str(BIN / "bandit"), "-c", "pyproject.toml", "-r", ".", "--severity-level", "medium", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_is_clean_with_the_production_switches():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SHOW_SETTINGS.replace(
                "print(",
                "from django.core.management import call_command;"
                "call_command('check', deploy=True, fail_level='WARNING'); print(",
            ),
        ],
        cwd=ROOT,
        env=_clean_env(**PRODUCTION),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_debug_is_off_and_https_switches_are_opt_in_by_default():
    result = _python(
        SHOW_SETTINGS, DJANGO_SETTINGS_MODULE="booking_api.config.settings", DJANGO_SECRET_KEY=secrets.token_urlsafe(50)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False"]


def test_without_debug_a_secret_key_is_required():
    result = _python(SHOW_SETTINGS, DJANGO_SETTINGS_MODULE="booking_api.config.settings")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def _env_file(path: Path) -> dict:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DJANGO_SECRET_KEY", "change-me"),
        ("DJANGO_SECRET_KEY", secrets.token_urlsafe(50)[:49]),  # Django's own minimum is 50
        ("DJANGO_SECRET_KEY", "ab" * 40),  # long, but two characters
        ("DJANGO_SECRET_KEY", "django-insecure-" + secrets.token_urlsafe(50)),
        ("JWT_SIGNING_KEY", "change-me"),
        ("METRICS_TOKEN", "change-me"),
        ("METRICS_TOKEN", secrets.token_urlsafe(8)),
        ("PAYMENT_WEBHOOK_SECRET", "change-me"),
        ("PAYMENT_WEBHOOK_SECRET", secrets.token_urlsafe(8)),
        ("TICKET_SIGNING_KEY", ""),
        ("TICKET_SIGNING_KEY", "change-me"),
        ("TICKET_SIGNING_KEY", "dev-insecure-ticket-signing-key-only-for-debug-runs"),
        ("TICKET_SIGNING_KEY", secrets.token_urlsafe(30)),
        ("TICKET_SIGNING_KEYS_PREVIOUS", f"{secrets.token_urlsafe(50)},change-me"),
    ],
    ids=[
        "key-template",
        "key-short",
        "key-few-characters",
        "key-django-insecure",
        "jwt-template",
        "metrics-template",
        "metrics-short",
        "webhook-template",
        "webhook-short",
        "ticket-missing",
        "ticket-template",
        "ticket-dev-default",
        "ticket-short",
        "ticket-previous-template",
    ],
)
def test_without_debug_a_template_or_short_secret_stops_the_start(name, value):
    env = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "METRICS_TOKEN": secrets.token_urlsafe(24), name: value}
    result = _python(SHOW_SETTINGS, DJANGO_SETTINGS_MODULE="booking_api.config.settings", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


def test_with_debug_the_template_values_are_allowed_for_development():
    result = _python(
        SHOW_SETTINGS,
        DJANGO_SETTINGS_MODULE="booking_api.config.settings",
        DJANGO_DEBUG="1",
        DJANGO_SECRET_KEY="change-me",
        METRICS_TOKEN="change-me",
    )
    assert result.returncode == 0, result.stderr


def test_with_debug_the_ticket_key_has_a_development_default():
    code = SHOW_SETTINGS.replace("print(", "print(s.TICKET_SIGNING_KEY.startswith('dev-insecure'), ")
    env = {k: v for k, v in _clean_env().items() if not k.startswith("TICKET_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "booking_api.config.settings", "DJANGO_DEBUG": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "True"


def test_an_empty_metrics_token_is_allowed_it_turns_the_token_off():
    result = _python(
        SHOW_SETTINGS,
        DJANGO_SETTINGS_MODULE="booking_api.config.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        METRICS_TOKEN="",
    )
    assert result.returncode == 0, result.stderr


def test_without_debug_paying_shows_with_the_fake_provider_need_it_explicitly_allowed():
    """The fake provider takes no money: a production that sells paying shows by default
    must configure a real provider, or say PAYMENT_FAKE_ALLOWED=1 (a staging site)."""
    env = {
        "DJANGO_SETTINGS_MODULE": "booking_api.config.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "BOOKING_PAYMENT_REQUIRED": "1",
        "PAYMENT_PROVIDER": "fake",
    }
    refused = _python(SHOW_SETTINGS, **env, PAYMENT_FAKE_ALLOWED="0")
    assert refused.returncode != 0
    assert "PAYMENT_PROVIDER=fake" in refused.stderr
    assert _python(SHOW_SETTINGS, **env, PAYMENT_FAKE_ALLOWED="1").returncode == 0


def test_a_copy_of_env_example_does_not_start_without_debug():
    env = _env_file(ROOT / ".env.example")
    assert env["DJANGO_DEBUG"] == "0"
    result = _python(SHOW_SETTINGS, **{**env, "DJANGO_SETTINGS_MODULE": "booking_api.config.settings"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is a template value" in result.stderr


def test_the_env_that_make_run_writes_is_a_development_profile_that_starts(tmp_path):
    """`make run` on a fresh clone: its .env passes the secret checks and lets seed_demo
    create the demo accounts (DEMO_USERS=1) without turning DEBUG on."""
    for name in ("Makefile", ".env.example"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run(["make", "-s", ".env", f"PYTHON={sys.executable}"], cwd=tmp_path, check=True, capture_output=True)
    env = _env_file(tmp_path / ".env")
    assert env["DEMO_USERS"] == "1"
    assert env["DJANGO_DEBUG"] == "0"
    # The fake payment provider charges, its webhooks signed with a fresh secret.
    assert env["PAYMENT_FAKE_ALLOWED"] == "1"
    assert len(env["PAYMENT_WEBHOOK_SECRET"]) >= 16
    result = _python(
        SHOW_SETTINGS.replace("print(", "print(s.DEMO_USERS, "),
        **{**env, "DJANGO_SETTINGS_MODULE": "booking_api.config.settings"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "False", "False"]


def _production_profile() -> dict:
    """The production profile as .env.example documents it (the lines between its markers)."""
    text = (ROOT / ".env.example").read_text()
    block = text.split("# >>> production profile\n", 1)[1].split("# <<< production profile", 1)[0]
    return dict(line.removeprefix("# ").split("=", 1) for line in block.splitlines())


def test_the_documented_production_profile_passes_check_deploy():
    """`manage.py check --deploy` with .env.example's production profile (and real secrets):
    no warning or error, DEBUG off, one trusted proxy hop, demo accounts refused."""
    profile = _production_profile()
    assert profile["DJANGO_NUM_PROXIES"] == "1"
    assert profile["HOST"] == "127.0.0.1"  # the proxy on this host; never every interface
    env = {
        **profile,
        "DJANGO_SETTINGS_MODULE": "booking_api.config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "METRICS_TOKEN": secrets.token_urlsafe(24),
    }
    code = SHOW_SETTINGS.replace(
        "print(",
        "from django.core.management import call_command;"
        "call_command('check', deploy=True, fail_level='WARNING');"
        "print(s.REST_FRAMEWORK['NUM_PROXIES'], s.DEMO_USERS, ",
    )
    result = _python(code, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr
    assert result.stdout.split()[-5:] == ["1", "False", "False", "True", "True"]


SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Stripe live key": re.compile(r"\b[rs]k_live_[A-Za-z0-9]{16,}"),
    "JSON Web Token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "URL with a password": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s:@]{3,}@"),
}
# Settings that hold secrets: in a committed env file they may only hold a placeholder.
SECRET_SETTINGS = re.compile(r"^(\w*(SECRET|PASSWORD|TOKEN|SIGNING_KEY|BASIC_AUTH)\w*)=(.*)$", re.M)
PLACEHOLDERS = {"", "change-me", "operator:change-me-too"}


def _tracked_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    return [ROOT / name.decode() for name in names if name]


def test_no_secret_is_committed():
    tracked = _tracked_files()
    assert tracked, "not a git checkout"
    assert ROOT / ".env" not in tracked
    found = []
    for path in tracked:
        text = path.read_text(errors="ignore") if path.is_file() else ""
        found += [
            f"{path.relative_to(ROOT)}: {kind}" for kind, pattern in SECRET_PATTERNS.items() if pattern.search(text)
        ]
        if path.name.startswith(".env") or path.suffix == ".env":
            found += [
                f"{path.relative_to(ROOT)}: {name} has a value"
                for name, _, value in SECRET_SETTINGS.findall(text)
                if value.strip() not in PLACEHOLDERS
            ]
    assert found == []


@pytest.mark.parametrize("kind", sorted(SECRET_PATTERNS))
def test_the_secret_patterns_catch_what_they_name(kind):
    samples = {
        "private key": "-----BEGIN RSA " + "PRIVATE KEY-----",
        "AWS access key": "AKIA" + "ABCDEFGHIJKLMNOP",
        "GitHub token": "ghp_" + "a" * 36,
        "Slack token": "xoxb-" + "1234567890-abc",
        "Stripe live key": "sk_live_" + "a" * 24,
        "JSON Web Token": "eyJ" + "a" * 20 + ".eyJ" + "b" * 20 + "." + "c" * 20,
        "URL with a password": "postgres://admin:" + "hunter2" + "@db.example.com/prod",
    }
    assert SECRET_PATTERNS[kind].search(samples[kind])
