# Everything a developer or CI needs: `make run` and `make test` set up the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
LOCAL := .local
DDB_LOCAL := $(LOCAL)/dynamodb-local
DDB_LOCAL_VERSION := 2.9.30
HOST ?= 127.0.0.1
PORT ?= 3000
# This Makefile's directory: SAM runs the build-<LogicalId> targets below from a scratch copy of the sources.
ROOT := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))

# The Lambda build (`make build`: `sam build`, BuildMethod makefile): the layer's dependencies come from the hashed
# lock, as wheels for the deployed platform, whatever the machine runs. The artifact test builds the same targets
# for this machine (LAYER_PLATFORM=manylinux2014_x86_64 LAYER_PYTHON_VERSION=3.11).
LAYER_PLATFORM ?= manylinux2014_aarch64
LAYER_PYTHON_VERSION ?= 3.13
LAYER_LOCK := $(ROOT)layers/shared/requirements.lock
LAYER_PIP ?= $(ROOT)$(SAM_VENV)/bin/python -m pip
BUILD_DIR := .aws-sam/build

CHROMIUM := /usr/bin/chromium

.PHONY: help install dev-tools dynamodb-local browser run run-dynamodb-local test test-fast lint openapi bench soak soak-ui scale scale-ui clean \
	build lock build-SharedLayer build-PaymentProgressFunction build-SwapFunction build-AuditFunction

help:
	@echo "make run        start the local stack on the embedded DynamoDB emulator (http://$(HOST):$(PORT))"
	@echo "make test       install everything, lint, and run the whole test suite"
	@echo "make test-fast  the fast tier only: no subprocess, no local stack, no linters (under a minute)"
	@echo "make lint       ruff, ruff format --check, mypy --strict, cfn-lint and sam validate --lint"
	@echo "make build      sam build: the arm64 / python3.13 layer and functions in $(BUILD_DIR), sizes against Lambda's limits"
	@echo "make lock       re-resolve the layer's hashed lock (layers/shared/requirements.lock) from its requirements.txt"
	@echo "make bench      benchmarks (cold start, warm overhead, DynamoDB cost, contention)"
	@echo "make soak       Locust load of the local stack (headless, bounded), then the conservation check"
	@echo "make soak-ui    the same load with Locust's web UI on http://127.0.0.1:8089"
	@echo "make scale      hot-profile Locust runs through the DynamoDB proxy's partition limits, caches on then off"
	@echo "make scale-ui   the same hot profile with Locust's web UI on http://127.0.0.1:8089 (caches as the env says)"

$(BIN)/activate: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(BIN)/activate

install: $(BIN)/activate

$(SAM_VENV)/bin/sam: requirements-sam.lock
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.lock
	touch $(SAM_VENV)/bin/sam

# Amazon DynamoDB Local, as shipped in the npm package amplify-dynamodb-simulator (run with java).
# Without npm the DynamoDB Local tests are skipped (the embedded emulator and moto's server still run).
$(DDB_LOCAL)/node_modules/amplify-dynamodb-simulator/emulator/DynamoDBLocal.jar:
	@if ! command -v npm >/dev/null; then echo "npm not found: DynamoDB Local not installed, its tests will be skipped"; exit 0; fi; \
	mkdir -p $(DDB_LOCAL) && cd $(DDB_LOCAL) && \
	npm install --silent --no-audit --no-fund --no-save amplify-dynamodb-simulator@$(DDB_LOCAL_VERSION)

dynamodb-local: $(DDB_LOCAL)/node_modules/amplify-dynamodb-simulator/emulator/DynamoDBLocal.jar

# Debian's Chromium for the browser tests (Playwright drives it; no browser download of its own).
# Installed with apt-get when missing (CI runs as root); without it the browser tests are skipped.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-nanum >/dev/null) \
			|| echo "chromium could not be installed: the browser tests will be skipped"; \
	else echo "chromium missing (as root: apt-get install -y chromium fonts-nanum): the browser tests will be skipped"; fi

browser: $(CHROMIUM)

dev-tools: install $(SAM_VENV)/bin/sam dynamodb-local browser

run: install
	$(BIN)/payments serve --host $(HOST) --port $(PORT)

# The local stack in front of Amazon DynamoDB Local (data kept in .local/dynamodb-data).
run-dynamodb-local: install dynamodb-local
	$(BIN)/python -m payments_cli.dynamodb_local --data-dir $(LOCAL)/dynamodb-data -- \
		$(BIN)/payments serve --host $(HOST) --port $(PORT)

# ruff (lint + format) and mypy (strict on layers/, functions/ and cli/), configured in pyproject.toml.
lint: install $(SAM_VENV)/bin/sam
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --template template.yaml --region us-east-1

# No Docker and no python3.13 needed: every resource is built by a build-<LogicalId> target of this Makefile.
build: $(SAM_VENV)/bin/sam
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --template template.yaml --build-dir $(BUILD_DIR)
	$(PYTHON) tools/artifact_sizes.py $(BUILD_DIR)

build-SharedLayer:
	$(LAYER_PIP) install --quiet --disable-pip-version-check --no-compile --require-hashes \
		--platform $(LAYER_PLATFORM) --python-version $(LAYER_PYTHON_VERSION) --implementation cp --only-binary=:all: \
		--target "$(ARTIFACTS_DIR)/python" -r $(LAYER_LOCK)
	rm -rf "$(ARTIFACTS_DIR)/python/bin"
	cp -R $(ROOT)layers/shared/payments "$(ARTIFACTS_DIR)/python/payments"
	find "$(ARTIFACTS_DIR)/python/payments" -name __pycache__ -prune -exec rm -rf {} +

build-PaymentProgressFunction:
	mkdir -p "$(ARTIFACTS_DIR)" && cp $(ROOT)functions/payment_progress/*.py "$(ARTIFACTS_DIR)/"

build-SwapFunction:
	mkdir -p "$(ARTIFACTS_DIR)" && cp $(ROOT)functions/swap/*.py "$(ARTIFACTS_DIR)/"

build-AuditFunction:
	mkdir -p "$(ARTIFACTS_DIR)" && cp $(ROOT)functions/audit/*.py "$(ARTIFACTS_DIR)/"

# One lock serves both platforms: it holds every wheel's hash of each pinned version, and pip refuses to install
# anything (a dependency included) that it does not pin.
lock: install
	$(BIN)/uv pip compile --quiet layers/shared/requirements.txt --python-platform aarch64-manylinux2014 \
		--python-version 3.13 --generate-hashes --custom-compile-command "make lock" -o $(LAYER_LOCK)

# Lint first (ruff, ruff format --check, mypy --strict, cfn-lint, sam validate): the linters run here only, never
# inside pytest. Then the whole suite, both tiers, one test module per pytest-xdist worker (each worker has its own
# state home, so the local stacks it starts never meet another worker's; see tests/conftest.py).
# The set-up steps are independent downloads (two virtualenvs, DynamoDB Local, Chromium): they run side by side, as
# do lint and build; --output-sync keeps each step's output in one piece.
test:
	$(MAKE) --no-print-directory -j4 --output-sync=target dev-tools
	$(MAKE) --no-print-directory -j2 --output-sync=target lint build
	SAM_BIN=$(abspath $(SAM_VENV)/bin/sam) DYNAMODB_LOCAL_DIR=$(abspath $(DDB_LOCAL)) $(BIN)/pytest -n auto --dist loadfile

# The fast tier (well under a minute): handlers on moto and everything else in-process. No `payments serve`, no
# DynamoDB Local, no SAM CLI, no browser, no linters: tests that start a process are marked `slow` (tests/conftest.py
# fails any other test that starts one).
test-fast: install
	$(BIN)/pytest -m "not slow" -n auto --dist loadfile

# docs/openapi.json from the handlers' routes (Powertools' OpenAPI generator); tests/test_openapi.py checks it is current.
openapi: install
	$(BIN)/python -m payments_cli.openapi --write

bench: install dynamodb-local
	DYNAMODB_LOCAL_DIR=$(abspath $(DDB_LOCAL)) $(BIN)/python bench/run.py

# Locust, bounded in users, time and requests (bench/locustfile.py --max-requests), on loopback only.
SOAK := DYNAMODB_LOCAL_DIR=$(abspath $(DDB_LOCAL)) $(BIN)/locust -f bench/locustfile.py -u 12 -r 6 --loglevel WARNING

soak: install dynamodb-local
	$(SOAK) --headless --only-summary -t 60s --stop-timeout 10

soak-ui: install dynamodb-local
	$(SOAK) --web-host 127.0.0.1

# The hot profile (bench/scale_locustfile.py): serve → the DynamoDB proxy playing DynamoDB's partition limits ÷ 300
# → DynamoDB Local, on loopback; once with the shared-items caches on (30 s), once off (0). About 80 s a run.
SCALE := DYNAMODB_LOCAL_DIR=$(abspath $(DDB_LOCAL)) $(BIN)/locust -f bench/scale_locustfile.py -u 16 -r 8 --loglevel WARNING
SCALE_RUN := --headless --only-summary -t 30s --stop-timeout 5

scale: install dynamodb-local
	status=0; \
	SHARED_ITEMS_CACHE_SECONDS=30 $(SCALE) $(SCALE_RUN) || status=1; \
	SHARED_ITEMS_CACHE_SECONDS=0 $(SCALE) $(SCALE_RUN) || status=1; \
	exit $$status

scale-ui: install dynamodb-local
	$(SCALE) --web-host 127.0.0.1

clean:
	rm -rf $(VENV) $(SAM_VENV) $(LOCAL) .aws-sam .pytest_cache .hypothesis
