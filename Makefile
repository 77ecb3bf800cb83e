# Two commands do all set-up on a fresh clone: `make run` and `make test`.
# Both create (or refresh, when pyproject.toml or constraints.txt change) the .venv first.
# `make run` serves the API on 127.0.0.1:8080 over ./data with the simulated rails.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The real EVM parts from npm (package.json, package-lock.json): anvil, the node the chain
# adapter's tests start on 127.0.0.1, and solc-js, which checks the test token's artifact.
NODE_STAMP := node_modules/.installed-stamp
# Debian's chromium: the real browser the console's tests (tests/adapters/console) drive through
# Playwright's Python client. apt installs it as root (CI); otherwise through sudo.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
DATA ?= data
PORT ?= 8080
SIM_SPEED ?= 1
CONFORMANCE ?= ../shared/conformance/run

.PHONY: run demo test lint bench bench-growth soak clean evm-tools

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

evm-tools: $(NODE_STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		chromium fonts-dejavu-core

run: $(STAMP)
	$(BIN)/stablerail migrate --data-dir $(DATA)
	@echo
	@echo "stablerail: serving http://127.0.0.1:$(PORT) over $(DATA) (simulated rails, speed $(SIM_SPEED)x)."
	@echo "In another terminal (README.md, 'A first walk', has the whole walk):"
	@echo "  OPS=\$$(.venv/bin/stablerail keys create --data-dir $(DATA) --role operator --user ops | sed -n 's/^key: //p')"
	@echo "  ALICE=\$$(.venv/bin/stablerail keys create --data-dir $(DATA) --client acme --role initiator --user alice | sed -n 's/^key: //p')"
	@echo "  curl -s -XPOST localhost:$(PORT)/v1/sim/deposits -H \"Authorization: Bearer \$$OPS\" -H 'Content-Type: application/json' -d '{\"client_id\":\"acme\",\"currency\":\"USD\",\"amount\":\"1000.00\"}'"
	@echo "  curl -s -XPOST localhost:$(PORT)/v1/transfers -H \"Authorization: Bearer \$$ALICE\" -H \"Idempotency-Key: \$$RANDOM\" -H 'Content-Type: application/json' -d '{\"source_currency\":\"USD\",\"target_currency\":\"USDC\",\"amount\":\"25.00\",\"destination\":{\"kind\":\"wallet\",\"chain\":\"ethereum\",\"address\":\"0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1\"}}'"
	@echo
	$(BIN)/stablerail serve --data-dir $(DATA) --host 127.0.0.1 --port $(PORT) --sim-speed $(SIM_SPEED)

# The offline walk of the engine alone: four transfers against a scripted world, then verify.
demo: $(STAMP)
	$(BIN)/stablerail demo --data-dir data/demo --fresh
	$(BIN)/stablerail verify --data-dir data/demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The suite runs on two processes (pytest-xdist; work stealing keeps the long drills from
# finishing last on one worker). The contract kit drives `stablerail serve` from outside exactly
# as API.md says.
test: lint $(NODE_STAMP) $(CHROMIUM)
	$(BIN)/pytest -n 2 --dist worksteal
	@if [ -x $(CONFORMANCE) ]; then PYTHON=$(BIN)/python $(CONFORMANCE); \
	else echo "NOTE: no contract kit at $(CONFORMANCE); the API contract was not run"; fi

bench: $(STAMP)
	$(BIN)/stablerail bench store
	$(BIN)/stablerail bench lifecycle
	$(BIN)/stablerail bench api
	$(BIN)/stablerail bench reconcile
	$(BIN)/stablerail bench growth --sizes 0,10000,100000

# The growth figures up to a million transfers stored (about half an hour and 10 GB of disk).
bench-growth: $(STAMP)
	$(BIN)/stablerail bench growth

# Longer randomized runs than make test: hypothesis with 2,000 examples per property, then
# 2,000 swarm seeds of the simulated world (seeds 1000.., beyond the 200 make test runs).
soak: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/pytest tests/engine/test_properties.py tests/engine/test_money.py tests/engine/test_ids.py
	$(BIN)/stablerail soak --first 1000 --count 2000 --transfers 100 --faults swarm

clean:
	rm -rf $(VENV) data node_modules
