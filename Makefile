# labgraph — two commands for a newcomer: `make serve` and `make test`.
# Each target sets up its own virtual environment (.venv) from pyproject.toml first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup build serve test interop interop-deps udata-venv lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

build: setup
	$(BIN)/labgraph build

serve: build
	$(BIN)/labgraph serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest -m "not interop"

# Tests against independent tools from Debian: Jena (riot, arq), raptor (rapper), rasqal (roqet),
# Chromium. `interop-deps` installs them (needs root, as on CI). `udata-venv` installs
# data.gouv.fr's harvester (udata) for tests/interop/test_udata_harvest.py.
interop: setup interop-deps udata-venv
	$(BIN)/python -m pytest -m interop

interop-deps:
	@bash .ci/interop-deps

# udata, data.gouv.fr's portal with its DCAT harvester, in a venv of its own: its ~100 dependencies
# (Flask, Celery, mongoengine, ...) and their pins stay out of .venv. Pinned versions, with
# mongomock standing in for MongoDB: tests/interop/udata-requirements.txt.
UDATA_VENV := .venv-udata
UDATA_STAMP := $(UDATA_VENV)/.installed-stamp
UDATA_REQUIREMENTS := tests/interop/udata-requirements.txt

$(UDATA_STAMP): $(UDATA_REQUIREMENTS)
	$(PYTHON) -m venv $(UDATA_VENV)
	$(UDATA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(UDATA_VENV)/bin/python -m pip install --quiet -r $(UDATA_REQUIREMENTS)
	touch $(UDATA_STAMP)

udata-venv: $(UDATA_STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python benchmarks/build_bench.py
	$(BIN)/python benchmarks/http_bench.py

clean:
	rm -rf $(VENV) $(UDATA_VENV) releases .pytest_cache
