# Routine tasks. `make run` starts the proxy, `make test` runs the whole suite; both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench eval install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/capsem-proxy run

test: $(STAMP)
	$(BIN)/ruff check capsem_proxy tests bench eval
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check capsem_proxy tests bench eval

bench: $(STAMP)
	$(BIN)/python -m bench

eval: $(STAMP)
	$(BIN)/python -m eval

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
