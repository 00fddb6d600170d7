# The targets CI and newcomers call. `make run` and `make test` set everything up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHECKED := watcher tests docs/examples

.PHONY: run test lint typecheck services bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $(STAMP)

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

# The tests start their own private RabbitMQ nodes on loopback and stop them when done.
test: $(STAMP) services lint typecheck
	$(BIN)/pytest

# The event contract (JSON Schemas, AsyncAPI) under docs/ is generated from the models.
docs: $(STAMP)
	$(BIN)/python -m watcher.contract

bench: $(STAMP)
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
