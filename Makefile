# d3q: `make run` trains CartPole in the terminal UI, `make test` runs the suite.
# Each target creates .venv on first use and reinstalls only when pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: run test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/d3q-tui $(ARGS)

test: $(VENV)/.installed-test
	$(BIN)/ruff check d3q_core d3q_tui tests bench
	$(BIN)/python -m pytest -q --durations=15 $(ARGS)

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check d3q_core d3q_tui tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
