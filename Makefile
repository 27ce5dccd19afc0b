# Two entry points: `make demo` (set up + main job) and `make test` (set up + test suite).
# Each creates .venv, installs the CPU wheel torch==2.13.0 first (plain `torch` would pull CUDA), then the project.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m plastic_core.native  # build the native kernels now (where no compiler works: a warning, the eager kernels)
	touch $(STAMP)

setup: $(STAMP)

# Main job: train a small neuromodulated maze agent (a few minutes on CPU), render a GIF of it, plot its curve.
# Running it again continues the same run (--resume) instead of overwriting it.
DEMO_RUN := runs/demo-maze
demo: $(STAMP)
	@if [ -f $(DEMO_RUN)/config.json ]; then \
		SDL_VIDEODRIVER=dummy $(VENV)/bin/plastic train --out $(DEMO_RUN) --resume; \
	else \
		SDL_VIDEODRIVER=dummy $(VENV)/bin/plastic train --env Plastic/Maze-v0 --env-kwargs '{"size": 9, "episode_length": 100}' \
			--core modulated --hidden 32 --lr 1e-3 --episodes 30000 --seed 0 --out $(DEMO_RUN); \
	fi
	SDL_VIDEODRIVER=dummy $(VENV)/bin/plastic evaluate $(DEMO_RUN) --episodes 300
	SDL_VIDEODRIVER=dummy $(VENV)/bin/plastic render $(DEMO_RUN) --out $(DEMO_RUN)/episode.gif
	$(VENV)/bin/plastic plot $(DEMO_RUN) --out $(DEMO_RUN)/curve.png
	@echo "Wrote $(DEMO_RUN)/episode.gif and $(DEMO_RUN)/curve.png (TensorBoard: tensorboard --logdir runs)"

test: $(STAMP)
	SDL_VIDEODRIVER=dummy $(PY) -m pytest -n 2 --durations=15

lint: $(STAMP)
	$(PY) -m ruff check .

# The documentation site (docs/, mkdocs.yml) into site/; --strict: warnings and broken links are errors.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) runs site
