# Two entry points: `make demo` (set up + main job) and `make test` (set up + test suite).
# Each creates .venv, installs the CPU wheel torch==2.13.0 first (plain `torch` would pull CUDA), then the project.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	SDL_VIDEODRIVER=dummy $(PY) scripts/demo.py

test: $(STAMP)
	SDL_VIDEODRIVER=dummy $(PY) -m pytest -n 2 --durations=15

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) runs
