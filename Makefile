# Two entry points: `make demo` (the main job end to end) and `make test`.
# Both set up what they need: the virtual environment, Delta's jars, Spark defaults.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LAKEHOUSE_ROOT ?= $(CURDIR)/lakehouse

.PHONY: setup system-packages demo test test-fast test-unit test-second-lake lint bench clean

$(STAMP): setup.cfg pyproject.toml
	@command -v java >/dev/null || { echo "Java is required: apt-get install -y openjdk-17-jre-headless" >&2; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required to fetch Delta's jars: apt-get install -y maven" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	$(VENV)/bin/features setup --no-databases

demo: setup
	$(VENV)/bin/features demo

# The cluster tests start PostgreSQL and Redis servers of their own, the SQL server's tests an
# OpenLDAP directory (slapd, installed unconfigured: no system directory starts), the report
# tests Chromium: Debian's packages.
system-packages:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	test -x /usr/sbin/slapd || missing="$$missing slapd"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing"; \
	    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections 2>/dev/null; \
	    apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "The cluster and report tests need Debian's$$missing: sudo apt-get install -y$$missing" >&2; \
	    exit 1; \
	  fi; \
	fi

# make test also installs the torch extra (large: see README) and requires it, so the
# torch_mlp tests run rather than skip.
TORCH_STAMP := $(VENV)/.installed-torch

$(TORCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[torch]'
	touch $(TORCH_STAMP)

test: setup system-packages $(TORCH_STAMP)
	LAKEHOUSE_TORCH=required $(PY) -m pytest

# The tiers for development (`make test` runs them all, and is what CI runs):
# test-unit: no JVM (the console, the settings, configs, plots), seconds;
# test-fast: every module on tiny hand-written data with one SparkSession, no cluster setup
# and no lake the daily job builds for days (the e2e and cluster tests are left out; the
# young lake's two generated days are in).
test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-fast: setup
	$(PY) -m pytest -m "not e2e and not cluster"

# Only the second lake's tests (part of `make test`): the daily job killed at random and
# rerun on the cluster setup, compared table by table with the embedded clean run.
test-second-lake: setup system-packages
	$(PY) -m pytest -m second_lake tests/e2e

lint: $(STAMP)
	$(VENV)/bin/ruff check features models_ml tests bench
	$(VENV)/bin/ruff format --check features models_ml tests bench feature_repo
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	cd dbt_project && $(abspath $(VENV))/bin/sqlfluff lint models

clean:
	rm -rf lakehouse dbt_project/target dbt_project/logs spark-warehouse derby.log metastore_db
