"""docker compose's `rabbitmq` and `pgbouncer` profiles, checked by reading the file (there
is no Docker engine in CI): which services each adds, and how the service is wired to them."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _profiles(name: str) -> list:
    return SERVICES[name].get("profiles", [])


def test_the_profiles_add_rabbitmq_and_pgbouncer_and_nothing_else_changes_by_default():
    assert _profiles("rabbitmq") == ["rabbitmq"]
    assert _profiles("pgbouncer") == ["pgbouncer"]
    assert _profiles("pgbouncer-config") == ["pgbouncer"]
    default = {name for name in SERVICES if not _profiles(name)}
    assert default == {"postgres", "redis", "migrate", "web", "worker", "beat", "flower"}
    # The defaults: the Redis broker and PostgreSQL directly, in session mode.
    env = SERVICES["web"]["environment"]
    assert env["CELERY_BROKER_URL"] == "${CELERY_BROKER_URL:-redis://redis:6379/0}"
    assert "@${DB_HOST:-postgres}:${DB_PORT:-5432}/booking" in env["DATABASE_URL"]
    assert env["DB_POOL_MODE"] == "${DB_POOL_MODE:-session}"


def test_the_services_wait_for_the_profiles_services_only_when_they_run():
    optional = {
        "rabbitmq": {"condition": "service_healthy", "required": False},
        "pgbouncer": {"condition": "service_started", "required": False},
    }
    for name in ("migrate", "web", "worker", "beat", "flower"):
        depends = SERVICES[name]["depends_on"]
        if "migrate" in depends:
            depends = SERVICES["migrate"]["depends_on"]  # which waited for them
        assert {key: depends[key] for key in optional} == optional, name
    assert SERVICES["pgbouncer-config"]["depends_on"] == {}


def test_rabbitmq_is_wired_as_the_broker():
    rabbit = SERVICES["rabbitmq"]
    assert rabbit["environment"]["RABBITMQ_DEFAULT_VHOST"] == "booking"
    assert rabbit["healthcheck"]["test"][:2] == ["CMD", "rabbitmq-diagnostics"]
    # Workers consume every queue of CELERY_TASK_QUEUES: no pinned queue list.
    assert "--queues" not in SERVICES["worker"]["command"]


def test_pgbouncer_gets_the_generated_ini_and_migrations_bypass_it():
    command = SERVICES["pgbouncer-config"]["command"][-1]
    assert "manage.py pgbouncer_databases --ini" in command
    assert "--worker-alias booking_worker" in command
    assert "--listen-port 6432" in command
    assert re.search(r"> /etc/pgbouncer/conf/pgbouncer.ini", command)
    assert "/etc/pgbouncer/conf/userlist.txt" in command
    assert "pgbouncer:/etc/pgbouncer/conf:ro" in SERVICES["pgbouncer"]["volumes"]
    dockerfile = (ROOT / SERVICES["pgbouncer"]["build"]["dockerfile"]).read_text()
    assert "apt-get install -y --no-install-recommends pgbouncer" in dockerfile
    assert '"/etc/pgbouncer/conf/pgbouncer.ini"' in dockerfile
    assert SERVICES["pgbouncer"]["depends_on"]["pgbouncer-config"] == {"condition": "service_completed_successfully"}
    # release_migrate sets lock_timeout as a session option: always directly on PostgreSQL.
    migrate = SERVICES["migrate"]["environment"]
    assert migrate["DATABASE_URL"].endswith("@postgres:5432/booking")
    assert migrate["DB_POOL_MODE"] == "session"
