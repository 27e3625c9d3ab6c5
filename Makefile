# Fresh machine: `make demo` (set up + verify the shipped induction hypothesis)
# and `make test` (set up + run the test suite). Set-up is idempotent.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.causal-mi-installed
PYTHON ?= python3

.PHONY: setup demo test test-slow test-retrain lint lock zoo-validate clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/causal-mi verify hypotheses/induction.yaml --out reports/induction

# The suite: per-file progress and the slowest tests at the end; under 10 min on 2 cores.
test: setup
	$(PY) -m pytest -m "not slow" --durations=15

# Longer evidence (full sweeps, per-family verifies, induction-2l retrained): run by CI
# after `make test`.
test-slow: setup
	$(PY) -m pytest -m "slow and not retrain" --durations=15

# Retraining every trained zoo model and re-verifying its files (~10 min): outside CI, so
# that CI stays well under 30 minutes; run it when a training script or the engine changes.
test-retrain: setup
	$(PY) -m pytest -m retrain --durations=15

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

lock: setup
	$(PY) -m pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu/torch==2.13.0/' > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf reports .pytest_cache
