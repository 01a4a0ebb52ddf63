# Two commands set everything up on a fresh machine with Python 3.11 and pip:
#   make demo   runs the main job (the engine on the built-in simulator)
#   make test   runs the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint fmt clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cuecap run --for 20

test: $(STAMP)
	tools/system-packages && $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check engine tests bench examples shot_saver.py event_recorder.py
	$(BIN)/ruff format --check engine tests bench examples shot_saver.py event_recorder.py

fmt: $(STAMP)
	$(BIN)/ruff format engine tests bench examples shot_saver.py event_recorder.py
	$(BIN)/ruff check --fix engine tests bench examples shot_saver.py event_recorder.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
