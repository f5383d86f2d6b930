# Segmint — the two commands of the quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The demo and the benchmarks need Segmint alone; the tests also need the test tools and
# the other engines audiences run on (ClickHouse, Spark), and PostgreSQL's driver.
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.installed-test-stamp
PYTEST_ARGS ?=

.PHONY: install demo test lint typecheck unit bench format clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,clickhouse,spark]'
	@touch $(TEST_STAMP)

install: $(STAMP)

## make demo: install, load a generated shop data set (first run only), start the server.
demo: install
	$(BIN)/segmint demo

## make test: lint, format check, type check and the whole test suite.
test: install $(TEST_STAMP) lint typecheck unit

lint:
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

format: install $(TEST_STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: install
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) .segmint .pytest_cache .mypy_cache .ruff_cache
