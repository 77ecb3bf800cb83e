# Two commands do all set-up on a fresh clone: `make run` and `make test`.
# Both create (or refresh, when pyproject.toml or constraints.txt change) the .venv first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA ?= data/demo

.PHONY: run test lint bench soak clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/stablerail demo --data-dir $(DATA) --fresh
	$(BIN)/stablerail verify --data-dir $(DATA)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/stablerail bench store
	$(BIN)/stablerail bench lifecycle

# Longer randomized runs than make test: hypothesis with 2,000 examples per property, then
# 2,000 swarm seeds of the simulated world (seeds 1000.., beyond the 200 make test runs).
soak: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/pytest tests/engine/test_properties.py tests/engine/test_money.py tests/engine/test_ids.py
	$(BIN)/stablerail soak --first 1000 --count 2000 --transfers 100 --faults swarm

clean:
	rm -rf $(VENV) data
