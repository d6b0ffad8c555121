# rpx: `make demo` and `make test` work on a fresh machine with only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m rpx.demo

lint: $(STAMP)
	$(BIN)/ruff check rpx tests experiments

test: lint
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=40

bench: $(STAMP)
	$(BIN)/python experiments/bench_core.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo.zarr
