# pbgan: `make help` lists the targets. Every target sets up .venv first if it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: help install run test test-all bench lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install pbgan with its dev tools

run: $(STAMP)  ## train the default task sequence (synth_paired4, ratio 0.25); extra overrides: ARGS="..."
	$(PY) -m pbgan.run $(ARGS)

test: $(STAMP)  ## run the tests (the slow ones are skipped: see test-all)
	$(PY) -m pytest -m "not slow" -q --durations=15

test-all: $(STAMP)  ## run every test, the slow end-to-end ones included
	$(PY) -m pytest -q

bench: $(STAMP)  ## every method vs the plain torch.nn reference: step times, floor, inference (ARGS="--scale paper")
	$(PY) -m pbgan.bench $(ARGS)

lint: $(STAMP)  ## ruff over the code
	$(PY) -m ruff check pbgan datamodules tests

clean:  ## remove run outputs and caches (keeps .venv)
	rm -rf outputs multirun .pytest_cache .ruff_cache
