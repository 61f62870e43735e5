# labgraph — two commands for a newcomer: `make serve` and `make test`.
# Each target sets up its own virtual environment (.venv) from pyproject.toml first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup build serve test interop interop-deps lint bench clean

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
# Chromium. `interop-deps` installs them (needs root, as on CI).
interop: setup interop-deps
	$(BIN)/python -m pytest -m interop

interop-deps:
	@bash .ci/interop-deps

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python benchmarks/build_bench.py
	$(BIN)/python benchmarks/http_bench.py

clean:
	rm -rf $(VENV) releases .pytest_cache
