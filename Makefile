# ctrlbench: `make demo` runs the main job on embedded defaults, `make test` passes the tests.
# Both create .venv themselves; torch is installed first, pinned (an unpinned torch pulls CUDA).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: demo test test-all lint typecheck pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ctrlbench study studies/motor_demo.toml --out results/motor_demo --workers 2

test: $(STAMP) lint typecheck pytest

test-all: $(STAMP) lint typecheck
	$(PY) -m pytest -m "not gpu"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup

clean:
	rm -rf $(VENV) results .mypy_cache .pytest_cache .ruff_cache
