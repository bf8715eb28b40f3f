# Every target makes .venv when it is missing (or when the lock changed). The venv installs
# the hash-checked lock requirements/test.txt, then recstore itself (editable, no deps).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
SRC := recstore tests bench
# Where each lock is made for: the image's and CI's platform, whatever machine refreshes it.
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--no-header --quiet

# The official DRACOON SDK, a second client of the stand-in in tests/test_dracoon_sdk.py, lives
# in its own environment: it pins httpx<0.28, cryptography<43 and tenacity<9 and installs the
# obsolete "asyncio" package, none of which recstore's environment may take.
SDK_VENV := .venv-sdk
SDK_STAMP := $(SDK_VENV)/.installed

.PHONY: demo test check lint bench lock clean sdk-venv

$(STAMP): pyproject.toml requirements/test.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/test.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

$(SDK_STAMP): requirements/sdk.txt
	test -x $(SDK_VENV)/bin/python || $(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements/sdk.txt
	touch $@

sdk-venv: $(SDK_STAMP)

demo: $(STAMP)
	$(BIN)/recstore demo

lint: $(STAMP)
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# Tests compile recstore once, and write bytecode even where the environment says not to
# (PYTHONDONTWRITEBYTECODE, as this machine and some CI images set): the suite starts hundreds of
# Python processes, and each would otherwise compile recstore from source again (measured on 2
# cores: 163 s and 254 CPU-s without bytecode, 145 s and 214 CPU-s with it).
PYC := PYTHONDONTWRITEBYTECODE=

# The inner loop: lint, types and the tests that need neither the dev stack nor a process.
check: lint
	$(PYC) $(BIN)/pytest -m "not stack and not e2e" -q -n 2 --dist loadscope

# Everything: lint, types, and every test (the dev stack and real processes included), on
# PYTEST_WORKERS pytest-xdist workers (each with its own dev stack; docs/development.md).
PYTEST_WORKERS ?= 6
test: lint $(SDK_STAMP)
	bash scripts/ensure-slapd
	bash scripts/ensure-promtool
	$(BIN)/python -m compileall -q recstore
	$(PYC) $(BIN)/pytest --collect-only -q -p no:cacheprovider > /dev/null  # tests rewritten once
	$(PYC) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder

# Every script, then bench/transfer.py again over TLS (S3 and DRACOON on https).
bench: $(BENCH_STAMP)
	@for script in $(filter-out bench/_%,$(wildcard bench/*.py)); do echo "== $$script"; $(BIN)/python $$script || exit 1; done
	@echo "== bench/transfer.py (BENCH_TLS=1)"; BENCH_TLS=1 $(BIN)/python bench/transfer.py

# Refresh the locks from pyproject.toml's ranges (newest releases that fit); commit the result.
# requirements/test.txt is the whole closure; the image's two are constrained to it, so every
# lock names the same versions.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet 'uv>=0.5'
	$(BIN)/uv pip compile pyproject.toml --extra test $(LOCK_FLAGS) --upgrade -o requirements/test.txt
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -c requirements/test.txt -o requirements/daemon.txt
	$(BIN)/uv pip compile pyproject.toml --extra devstack $(LOCK_FLAGS) -c requirements/test.txt -o requirements/devstack.txt
	$(BIN)/uv pip compile requirements/sdk.in $(LOCK_FLAGS) -o requirements/sdk.txt

clean:
	rm -rf $(VENV) $(SDK_VENV) .mypy_cache .pytest_cache .ruff_cache .devstack
