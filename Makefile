# The two commands a new user needs: `make demo` and `make test`. Both set up everything first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup system-deps demo test lint typecheck unit bench bench-api soak openapi clean

## setup: system packages (ffmpeg with libass, fonts) + .venv with the package and dev tools
setup: system-deps $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

## demo: burn the bundled SRT into a generated clip on this machine
demo: setup
	$(BIN)/vidp demo

## test: lint, type-check and the whole test suite
test: setup lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## bench: measure the engine against the reference two-pass approach (bench/results/)
bench: setup
	$(BIN)/python -m bench.run

## bench-api: latency of each HTTP API route on the local servers, and the API Lambdas' cold import
bench-api: setup
	$(BIN)/python -m bench.api

## soak: JOBS jobs (default 300) through the local AWS under injected faults and hostile inputs;
## exits 1 if an invariant broke (report: bench/results/soak-*.md). SOAK_ARGS: e.g. --no-restart --seed 2
JOBS      ?= 300
SOAK_ARGS ?=
soak: setup
	$(BIN)/python -m bench.soak --jobs $(JOBS) $(SOAK_ARGS)

## openapi: rewrite the HTTP APIs' OpenAPI documents from the routes (a test checks they are current)
openapi: $(STAMP)
	$(BIN)/python scripts/openapi.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
