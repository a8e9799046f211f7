# The few commands a newcomer needs. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
FLOWER_PORT ?= 5555
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test test-faults security install services migrate lint format clean

# honcho is told not to read .env (--env /dev/null): it would let the file override the
# environment. Each process reads .env itself, with the environment winning.
## run: install, prepare PostgreSQL/Redis and the database, load demo data, start web, worker, beat, flower
run: install .env
	$(PY) manage.py ensure_services
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo --with-users
	@echo ""
	@echo "  API      http://127.0.0.1:$(PORT)/api/v1/"
	@echo "  Swagger  http://127.0.0.1:$(PORT)/swagger/   (ReDoc: /redoc/, schema: /swagger.json)"
	@echo "  Admin    http://127.0.0.1:$(PORT)/admin/     (admin / admin-pass-123)"
	@echo "  Flower   http://127.0.0.1:$(FLOWER_PORT)/     ($$(grep '^FLOWER_BASIC_AUTH=' .env | cut -d= -f2-))"
	@echo "  Demo user: demo / demo-pass-123"
	@echo ""
	FLOWER_PORT=$(FLOWER_PORT) honcho start --env /dev/null --port $(PORT) web worker beat flower

## test: the whole test suite against the local PostgreSQL and Redis, but the fault tests
test: install
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py ensure_services
	$(PY) -m pytest -m "not faults"

## test-faults: kill, stop, freeze and slow down processes and servers (private PostgreSQL and Redis)
test-faults: install
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py ensure_services
	$(PY) -m pytest -m faults tests/faults

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# A development .env with a fresh secret key and Flower password (kept out of git).
.env:
	sed -e "s|^DJANGO_SECRET_KEY=.*|DJANGO_SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')|" \
	    -e "s|^FLOWER_BASIC_AUTH=.*|FLOWER_BASIC_AUTH=operator:$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(12))')|" \
	    .env.example > .env
	@echo "Wrote .env (development settings)."

## security: bandit over the project; medium and high findings fail (a `# nosec` must say why)
security: install
	bandit -c pyproject.toml -r . --severity-level medium --quiet

lint: install
	ruff check .
	ruff format --check .

format: install
	ruff check --fix .
	ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
