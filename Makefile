# Two commands do all set-up on a fresh machine:
#   make demo   -- install into .venv, then run the main job on an embedded LocalCluster
#   make test   -- install into .venv (with the test extras, the Gammapy oracle and the deploy
#                  validation tools), then run the tests
# Habits (docs/contributing.md):
#   make lint       -- ruff check, ruff format --check, mypy (configured in pyproject.toml)
#   make test-fast  -- unit tests only: no slow, real-data or Gammapy-validation tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-fast lint bench install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test,validation,deploy,sampling]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gdask demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not realdata and not validation"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py
