# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck pytest test-db clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## Install, migrate and serve on 127.0.0.1:8065 with SQLite under ./data
## (honours TIDINGS_LISTEN, TIDINGS_DATABASE_URL, TIDINGS_DATA_DIR).
run: $(VENV)/.installed
	$(BIN)/tidings serve

## Install the dev dependencies, then lint, type-check and run every test.
test: $(VENV)/.installed-dev lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

## The database-touching tests only (.ci/run runs them again on PostgreSQL).
test-db: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m db

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
