# Two commands do everything on a fresh machine (see README.md):
#   make run    set up .venv and run the nightly job on the bundled sample
#   make test   set up .venv and run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= runs/sample
# torch is pinned here, not in pyproject.toml: a looser requirement makes pip pick a multi-GB CUDA
# build; 2.13.0 resolves to the CPU wheel on this machine. GPU workers install their own build.
TORCH_PIN ?= torch==2.13.0

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: setup run test lint bench bench-memory fuzz clean

$(STAMP): pyproject.toml requirements.lock requirements-test.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -r requirements.lock -r requirements-test.lock -e '.[test]'
	sh infra/scripts/install-jemalloc.sh $(PY)
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/angiokg run-sample --out $(OUT)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_sentences.py

bench-memory: $(STAMP)
	$(PY) bench/bench_memory.py

# FUZZ_SECONDS=600 make fuzz for a longer run
fuzz: $(STAMP)
	FUZZ_SECONDS=$${FUZZ_SECONDS:-180} $(PY) fuzz/fuzz_brat_reader.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
