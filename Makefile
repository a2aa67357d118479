# Routine tasks. `make run` starts the proxy, `make test` runs the whole suite; both install what they need
# (the package with every optional backend: `.[all,test]`).
# `make run ARGS="--config proxy.yaml --port 9000"` passes options to `capsem-proxy run`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INSTALL_LOG := $(VENV)/install.log
# pip's own output is a few lines per package: this shows its progress in a few lines and keeps the rest in the log.
PIP := $(PYTHON) scripts/pip_progress.py --log $(INSTALL_LOG)
ARGS ?=
# The suite runs its test files on this many processes (most of a test's time is spent waiting on servers).
TEST_WORKERS ?= 2
LINTED := capsem_proxy tests bench eval scripts examples

.PHONY: run test test-fast lint bench eval install clean

$(STAMP): pyproject.toml
	@echo "Installing capsem-proxy and its dependencies into $(VENV) (about a minute the first time)"
	@$(PYTHON) -m venv $(VENV)
	@: > $(INSTALL_LOG)
	@$(PIP) --label "pip itself" -- $(BIN)/pip install --upgrade pip
	@$(PIP) --label "capsem-proxy" -- $(BIN)/pip install -e '.[all,test]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@echo "Starting capsem-proxy (Ctrl-C stops it)"
	@$(BIN)/capsem-proxy run $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Everything but the integration tests (which start real servers): under a minute.
test-fast: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy
	$(BIN)/python -m pytest -m "not integration" -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

# Also rewrites the precision/recall table of docs/detectors.md from the scores just measured.
eval: $(STAMP)
	$(BIN)/python -m eval --write-docs

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
