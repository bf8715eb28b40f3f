# Every target makes .venv when it is missing (or when pyproject.toml changed).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
SRC := $(wildcard recstore tests bench)

# The official DRACOON SDK, a second client of the stand-in in tests/test_dracoon_sdk.py, lives
# in its own environment: it pins httpx<0.28, cryptography<43 and tenacity<9 and installs the
# obsolete "asyncio" package, none of which recstore's environment may take.
SDK_VENV := .venv-sdk
SDK_STAMP := $(SDK_VENV)/.installed
SDK_REQUIREMENT := dracoon==1.13.0

.PHONY: demo test lint bench clean sdk-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

$(SDK_STAMP): Makefile
	test -x $(SDK_VENV)/bin/python || $(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --quiet '$(SDK_REQUIREMENT)'
	touch $@

sdk-venv: $(SDK_STAMP)

demo: $(STAMP)
	$(BIN)/recstore demo

lint: $(STAMP)
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)
	$(BIN)/mypy

test: lint $(SDK_STAMP)
	bash scripts/ensure-slapd
	$(BIN)/pytest

bench: $(BENCH_STAMP)
	@for script in $(filter-out bench/_%,$(wildcard bench/*.py)); do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(SDK_VENV) .mypy_cache .pytest_cache .ruff_cache .devstack
