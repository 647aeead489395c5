# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLM_TEST_STAMP := $(VENV)/.installed-llm-test

.PHONY: install run test reliability audit bench clean

install: $(STAMP)

# torch first, pinned to the CPU build on this disk: a bare `torch` requirement pulls a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip  # the venv's own pip is whatever Python shipped (23.2 here: known advisories)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/qa ingest seeds/
	$(BIN)/qa serve

# The LLM tests' extras: llama-cpp-python compiles from source (about 5 minutes, then pip's cache).
$(LLM_TEST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[llm-test]'
	touch $(LLM_TEST_STAMP)

test: install $(LLM_TEST_STAMP)
	$(BIN)/python -m pytest -q

# llama-index's HuggingFaceEmbedding: only the benchmark's "path a user would otherwise write" needs it.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

# The long promises of docs/reliability.md: 60 s of load, fuzzing, faults under load.
reliability: install $(LLM_TEST_STAMP) $(BENCH_STAMP)  # tests/test_bench.py's long run uses the bench extra
	$(BIN)/python -m pytest -q -m reliability

# Known vulnerabilities of everything installed, each fixed or explained in .ci/audit.py (needs pypi.org).
audit: install $(LLM_TEST_STAMP) $(BENCH_STAMP)
	$(BIN)/python .ci/audit.py

# Issue 9's figures → bench/results.json and docs/benchmarks.md (about two hours on 2 cores; BENCH_ARGS="--sizes seed,300" for less).
bench: install $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data
