# Two commands on a fresh machine: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The end-to-end tests mostly wait (audio paced in real time, servers, browsers), so three pytest-xdist
# workers overlap them on two cores. loadfile keeps a module's tests, and any servers they share, on one
# worker; each worker has its own test database, Redis databases and logs (tests/services_plugin.py).
# `make test PYTEST_ARGS=` runs the suite in one process.
PYTEST_ARGS ?= -n 3 --dist loadfile

.PHONY: run test test-tools lint format bench-tenants lock clean-data

$(STAMP): requirements/base.txt requirements/dev.txt requirements/lock.txt requirements/silero.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements/silero.txt
	@touch $(STAMP)

## make run: the platform with the widget demo, embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set
run: $(STAMP)
	$(PY) -m aura.launcher

## make test: the whole suite (installs system tools the tests need when run as root)
test: $(STAMP) test-tools
	@$(PY) scripts/check_tracked_files.py
	@$(PY) -m ruff check . && $(PY) -m ruff format --check .
	@$(VENV)/bin/lint-imports --no-cache
	@set +e; $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests - that is a failure"; exit 1; fi; exit $$rc

test-tools:
	@bash scripts/install-test-tools.sh

lint:
	$(PY) -m ruff check . && $(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format:
	$(PY) -m ruff check --fix . && $(PY) -m ruff format .

bench-tenants: $(STAMP)
	$(PY) -m bench.tenants --tenants 200 --json

lock: $(STAMP)
	( echo '# Every installed package, pinned (pip freeze of requirements/dev.txt). Regenerate with `make lock`.'; \
	  $(PY) -m pip freeze --exclude-editable ) > requirements/lock.txt

clean-data:
	rm -rf .data
