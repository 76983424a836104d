# Two commands on a fresh machine: `make demo` and `make test`. Both run `make setup` first (idempotent).
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup demo test lint bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) -m damage_perception.cli demo $(ARGS)

test: setup
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/lint-imports
	@$(PY) -m pytest test -q $(ARGS)

lint: setup
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/lint-imports

bench: setup
	@$(PY) benchmarks/bench_pipeline.py
	@$(PY) benchmarks/bench_render.py

clean:
	rm -rf build out .pytest_cache
