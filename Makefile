# The two commands of the README, and the checks they are made of.
# Each target bootstraps .venv on its own, so a fresh clone needs nothing else.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,demo]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sla-daemon demo

test: $(STAMP)
	sh scripts/ensure-test-packages.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	sh scripts/ensure-test-packages.sh
	$(BIN)/pytest tests/integration tests/e2e

# Not part of `make test`: prints figures against baselines measured in the same run.
# The soak runs last and takes SOAK_MINUTES (e.g. `make bench SOAK_MINUTES=5`).
SOAK_MINUTES ?= 30
bench: $(STAMP)
	sh scripts/ensure-test-packages.sh
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/evaluate.py
	$(BIN)/python benchmarks/idle_cycle.py
	$(BIN)/python benchmarks/soak.py --minutes $(SOAK_MINUTES)

# Regenerates the key reference in docs/configuration.md from the configuration schema.
docs: $(STAMP)
	$(BIN)/python -m sla_daemon.config_docs --write docs/configuration.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
