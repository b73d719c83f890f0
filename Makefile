# Two commands do all the set-up on a fresh machine (Python >= 3.11 and make):
#   make run    creates .venv on first use, installs, and starts the hub on 127.0.0.1:8000
#   make test   creates .venv on first use, installs with the test extra, lints (make lint), and runs the suite
# Both install the `embedded` extra (SecantusDB, GPL-2.0, a separate process): never part of a plain install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[embedded,test]"
	touch $(STAMP)

.PHONY: install run lint test bench
install: $(STAMP)

run: $(STAMP)
	$(BIN)/lotpulse serve

# ruff (style, imports, likely bugs) and mypy (types), both configured in pyproject.toml; must stay clean.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

BENCHMARKS := graphql movements ingest fanout webhooks oauth_tokens portal signals

bench: $(STAMP)
	for name in $(BENCHMARKS); do $(BIN)/python -m bench.$$name || exit 1; done
