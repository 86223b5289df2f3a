# The two commands: `make run` (everything, until Ctrl-C) and `make test` (every test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test fuzz client-check bench page-weight drills check migrate demo messages clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(STAMP)

run: install
	@scripts/run-local

# One test process per core (pytest-xdist; each has its own test database): PYTEST_WORKERS=0
# runs them in this process, e.g. with `PYTEST_ARGS="-x --pdb"`.
PYTEST_WORKERS ?= auto
test: install
	@scripts/system-deps
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

bench: install
	@command -v wrk >/dev/null || { echo "Installing wrk (Debian package)"; \
	  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }; }
	$(PY) scripts/bench.py

# The case file's bytes on the wire in production settings (gunicorn, WhiteNoise, gzip), read
# from Chromium's network log: first and repeat load against the budget (150 KB, 20 KB).
page-weight: install
	@scripts/system-deps
	$(PY) scripts/page_weight.py

# Fault drills against PostgreSQL (DATABASE_URL's server), a Redis of their own and a real
# worker: slow receiver, worker killed, broker down, scan killed, cache down, PostgreSQL
# restarted (DRILL_PG_RESTART_COMMAND; else its connections ended); prints what was lost.
drills: install
	$(PY) scripts/fault_drills.py

fuzz: install
	$(PY) scripts/fuzz_api.py

# A client generated from the served schema (openapi-python-client) against a live server:
# every documented answer parsed, a webhook verified. Fails when the schema regresses.
client-check: install
	$(PY) scripts/client_check.py

check: install
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py load_demo

# After changing any user-facing string: extract, translate the new entries in
# locale/{uk,fr}/LC_MESSAGES/django.po, then run this again to compile (needs gettext).
MAKEMESSAGES_ARGS := -l uk -l fr --ignore=.venv --ignore=tests --ignore=scripts --ignore=var --ignore=staticfiles --add-location=file --no-obsolete
messages: install
	$(PY) manage.py makemessages $(MAKEMESSAGES_ARGS)
	$(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
