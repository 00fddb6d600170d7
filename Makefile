# The targets CI and newcomers call. `make run` and `make test` set everything up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHECKED := watcher tests docs/examples

.PHONY: run test lint typecheck services bench docs lock clean

# The locked versions (requirements/, with hashes) are what the tests ran with; the
# project itself is installed on top of them, without resolving anything again.
$(STAMP): pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes --requirement requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps --editable .
	touch $(STAMP)

# Resolve the dependencies of pyproject.toml again into the lock files (needs the network).
lock: $(STAMP)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --quiet \
		--output-file requirements/runtime.txt
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
		--quiet --output-file requirements/dev.txt

run: $(STAMP)
	$(BIN)/order-watcher demo

services:
	scripts/install-services.sh

lint: $(STAMP)
	$(BIN)/ruff check $(CHECKED)
	$(BIN)/ruff format --check $(CHECKED)
	$(BIN)/lint-imports
	$(BIN)/python -m watcher.contract --check

typecheck: $(STAMP)
	$(BIN)/mypy

# The tests start their own private RabbitMQ nodes and PostgreSQL clusters on loopback and
# stop them when done.
test: $(STAMP) services lint typecheck
	$(BIN)/pytest

# The event contract (JSON Schemas, AsyncAPI) under docs/ is generated from the models.
docs: $(STAMP)
	$(BIN)/python -m watcher.contract

bench: $(STAMP)
	$(BIN)/python -m tests.bench
	$(BIN)/python -m tests.bench --store postgresql
	$(BIN)/python -m tests.bench_fleet
	$(BIN)/python -m tests.bench_schedule
	$(BIN)/python -m tests.bench_relay
	$(BIN)/python -m tests.bench_memory

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
