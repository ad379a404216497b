# Two entry points: `make demo` (the main job end to end) and `make test`.
# Both set up what they need: the virtual environment, Delta's jars, Spark defaults.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LAKEHOUSE_ROOT ?= $(CURDIR)/lakehouse

.PHONY: setup demo test lint bench clean

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

test: setup
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check features models_ml tests bench

clean:
	rm -rf lakehouse dbt_project/target dbt_project/logs spark-warehouse derby.log metastore_db
