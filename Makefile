# The few commands a newcomer needs. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
FLOWER_PORT ?= 5555
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test test-faults test-rabbitmq rabbitmq test-pgbouncer pgbouncer security install browser openapi-tools services migrate lint format clean bench bench-quick bench-soak bench-admin

# honcho is told not to read .env (--env /dev/null): it would let the file override the
# environment. Each process reads .env itself, with the environment winning.
## run: install, prepare PostgreSQL/Redis and the database, load demo data, start web, worker, beat, flower
run: install .env
	@# A .env written before /metrics existed gets a token too.
	@grep -q '^METRICS_TOKEN=' .env || echo "METRICS_TOKEN=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(24))')" >> .env
	@# ... and the development flag that lets seed_demo create the demo accounts.
	@grep -q '^DEMO_USERS=' .env || echo "DEMO_USERS=1" >> .env
	@# ... and the fake payment provider's permission and webhook secret (development only).
	@grep -q '^PAYMENT_FAKE_ALLOWED=' .env || echo "PAYMENT_FAKE_ALLOWED=1" >> .env
	@grep -q '^PAYMENT_WEBHOOK_SECRET=.' .env || echo "PAYMENT_WEBHOOK_SECRET=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(24))')" >> .env
	@# ... and the key that signs ticket codes.
	@grep -q '^TICKET_SIGNING_KEY=' .env || echo "TICKET_SIGNING_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" >> .env
	$(PY) manage.py ensure_services
	$(PY) manage.py release_migrate
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo --with-users
	@echo ""
	@echo "  Booking  http://127.0.0.1:$(PORT)/"
	@echo "  API      http://127.0.0.1:$(PORT)/api/v1/"
	@echo "  Swagger  http://127.0.0.1:$(PORT)/swagger/   (ReDoc: /redoc/, schema: /swagger.json)"
	@echo "  Admin    http://127.0.0.1:$(PORT)/admin/     (admin / admin-pass-123)"
	@echo "  Flower   http://127.0.0.1:$(FLOWER_PORT)/     ($$(grep '^FLOWER_BASIC_AUTH=' .env | cut -d= -f2-))"
	@echo "  Metrics  curl -H \"Authorization: Bearer $$(grep '^METRICS_TOKEN=' .env | cut -d= -f2-)\" http://127.0.0.1:$(PORT)/metrics"
	@echo "  Demo user: demo / demo-pass-123"
	@echo ""
	@# Counters start from zero with the stack: no process of the previous run writes here any more.
	rm -rf var/metrics
	FLOWER_PORT=$(FLOWER_PORT) honcho start --env /dev/null --port $(PORT) web worker beat flower

## test: the whole test suite against the local PostgreSQL and Redis, but the fault tests
test: install browser openapi-tools pgbouncer
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py ensure_services
	$(PY) -m pytest -m "not faults"

## test-faults: kill, stop, freeze and slow down processes and servers (private PostgreSQL and Redis)
test-faults: install
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py ensure_services
	$(PY) -m pytest -m faults tests/faults

# The booking tests again on RabbitMQ (quorum queues, 4 bookings queues routed by show), each
# run and each fault test on a virtual host of its own: the e2e, race, dispatch and broker
# tests, and the worker fault tests (killed pool, killed main process, killed host). The rest
# of the suite does not touch the broker or only Redis-specific parts of it.
# No user in the URL: kombu then logs in as RabbitMQ's default guest user.
TEST_AMQP_URL ?= amqp://127.0.0.1:5672
RABBITMQ_TESTS := tests/test_broker.py tests/test_e2e_bookings.py tests/test_concurrency_race.py tests/test_dispatch.py
RABBITMQ_FAULT_TESTS := tests/faults/test_faults_workers.py tests/faults/test_faults_hosts.py
## test-rabbitmq: the booking and worker fault tests with CELERY_BROKER_URL on RabbitMQ
test-rabbitmq: install openapi-tools rabbitmq
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py ensure_services
	TEST_AMQP_URL=$(TEST_AMQP_URL) BOOKING_QUEUE_SHARDS=4 $(PY) -m pytest -m "not faults" $(RABBITMQ_TESTS)
	TEST_AMQP_URL=$(TEST_AMQP_URL) BOOKING_QUEUE_SHARDS=4 $(PY) -m pytest -m faults $(RABBITMQ_FAULT_TESTS)

# The booking e2e tests and the worker fault tests with the service behind a private PgBouncer
# in transaction pooling mode (tests/pgbouncer.py).
PGBOUNCER_TESTS := tests/test_pgbouncer.py tests/test_e2e_bookings.py
PGBOUNCER_FAULT_TESTS := tests/faults/test_faults_workers.py tests/faults/test_faults_hosts.py
## test-pgbouncer: the booking e2e and worker fault tests through PgBouncer (transaction pooling)
test-pgbouncer: install openapi-tools pgbouncer
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py ensure_services
	TEST_PGBOUNCER=1 $(PY) -m pytest -m "not faults" $(PGBOUNCER_TESTS)
	TEST_PGBOUNCER=1 $(PY) -m pytest -m faults $(PGBOUNCER_FAULT_TESTS)

# RabbitMQ for test-rabbitmq: started when it is installed but down (CI machines start it first).
rabbitmq:
	@if command -v rabbitmqctl >/dev/null && ! rabbitmqctl -q status >/dev/null 2>&1; then \
	  echo "Starting RabbitMQ ..."; rabbitmq-server -detached; \
	  for i in $$(seq 90); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 1; done; \
	fi

# Debian's pgbouncer for the PgBouncer tests, installed when it is missing and apt-get can
# install it; otherwise those tests are skipped (tests/test_pgbouncer.py) or fail saying why.
pgbouncer:
	@if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's pgbouncer for the PgBouncer tests ..."; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq pgbouncer >/dev/null) \
	    || echo "WARNING: could not install pgbouncer; the PgBouncer tests will be skipped."; \
	fi

# The benchmark starts its own stack (the Procfile's web, worker and beat) on a fresh
# database BENCH_DB_NAME and Redis database BENCH_REDIS_DB, and drops/flushes them after.
BENCH_DB_NAME ?= booking_bench
BENCH_REDIS_DB ?= 13
BENCH := BENCH_DB_NAME=$(BENCH_DB_NAME) BENCH_REDIS_DB=$(BENCH_REDIS_DB) $(PY) -m bench

## bench: the full benchmark (< 10 min); report in bench/results/full.{md,json}, plot full-flash-sale.png
bench: install
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py ensure_services
	$(BENCH)

## bench-quick: the same scenarios at smoke-test size (< 2 min); fails on any invariant violation
bench-quick: install
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py ensure_services
	$(BENCH) --quick

## bench-admin: the admin's booking list at ROWS bookings (default 5 million) in BENCH_DB_NAME
ROWS ?= 5000000
bench-admin: install
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py ensure_services
	BENCH_DB_NAME=$(BENCH_DB_NAME) $(PY) -m bench.admin_list --rows $(ROWS)

## bench-soak: 5 minutes of steady load; fails when a process's memory keeps growing
bench-soak: install
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py ensure_services
	$(BENCH) --soak

install: $(VENV)/.installed

# Debian's chromium for the Swagger UI browser test, installed when it is missing and apt-get
# can install it; otherwise that one test is skipped and says why.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's chromium for tests/test_swagger_browser.py ..."; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null) \
	    || echo "WARNING: could not install chromium; the Swagger UI browser test will be skipped."; \
	fi

# The client authors' tools that the tests use on /swagger.json (swagger2openapi,
# openapi-typescript, tsc), pinned in tools/openapi/package-lock.json. Without npm the tests
# that need them are skipped and say why.
OPENAPI_TOOLS := tools/openapi
openapi-tools: $(OPENAPI_TOOLS)/node_modules/.installed
$(OPENAPI_TOOLS)/node_modules/.installed: $(OPENAPI_TOOLS)/package.json $(OPENAPI_TOOLS)/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix $(OPENAPI_TOOLS) --no-audit --no-fund --loglevel=error && touch $@; \
	else \
	  echo "WARNING: npm not found; the generated-client tests and the schema checks of responses will be skipped."; \
	fi

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# A development .env with a fresh secret key, ticket signing key, Flower password, metrics token
# and payment webhook secret (kept out of git), DEMO_USERS=1 and PAYMENT_FAKE_ALLOWED=1: the demo
# accounts and the fake payment provider of `make run` exist only in such a development profile.
.env:
	sed -e "s|^DJANGO_SECRET_KEY=.*|DJANGO_SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')|" \
	    -e "s|^TICKET_SIGNING_KEY=.*|TICKET_SIGNING_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')|" \
	    -e "s|^FLOWER_BASIC_AUTH=.*|FLOWER_BASIC_AUTH=operator:$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(18))')|" \
	    -e "s|^DEMO_USERS=.*|DEMO_USERS=1|" \
	    -e "s|^METRICS_TOKEN=.*|METRICS_TOKEN=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(24))')|" \
	    -e "s|^PAYMENT_FAKE_ALLOWED=.*|PAYMENT_FAKE_ALLOWED=1|" \
	    -e "s|^PAYMENT_WEBHOOK_SECRET=.*|PAYMENT_WEBHOOK_SECRET=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(24))')|" \
	    .env.example > .env
	@echo "Wrote .env (development settings)."

## security: bandit over the project; medium and high findings fail (a `# nosec` must say why)
security: install
	bandit -c pyproject.toml -r . --severity-level medium --quiet

## lint: ruff, the import layers (.importlinter: README "How it works") and mypy on core/ and workers/
lint: install
	ruff check .
	ruff format --check .
	lint-imports
	mypy

format: install
	ruff check --fix .
	ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache $(OPENAPI_TOOLS)/node_modules
