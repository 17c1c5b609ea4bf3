# Two commands on a fresh machine: `make run` and `make test`. Each makes .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint typecheck unit demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(BIN)/news-monitor run -c config/monitor.yaml

demo: $(STAMP)
	$(BIN)/news-monitor demo

lint: $(STAMP)
	$(BIN)/ruff check monitor tests bench scripts
	$(BIN)/ruff format --check monitor tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

# Three workers on two cores: most tests wait on subprocesses and loopback servers.
unit: $(STAMP)
	$(BIN)/pytest -q -n 3

test: lint typecheck unit

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
