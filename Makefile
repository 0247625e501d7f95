# ctrlbench: `make demo` runs the main job on embedded defaults, `make test` passes the tests.
# Both create .venv themselves; torch is installed first, pinned (an unpinned torch pulls CUDA).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: demo test test-all lint typecheck pytest mutation clean

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

# Mutation testing of the math modules (issue 16; not part of `make test`): one mutmut run per
# module with only that module's tests; report in results/mutation/report.md (see
# studies/mutation.py; `MODULES="llm_rl/losses.py controllers/pid.py"` picks a subset).
MUTMUT_VERSION := 3.8.1
MODULES ?=
mutation: $(STAMP)
	@$(PY) -c "import importlib.metadata as m, sys; sys.exit(m.version('mutmut') != '$(MUTMUT_VERSION)')" 2>/dev/null \
		|| $(PY) -m pip install --quiet mutmut==$(MUTMUT_VERSION)
	$(PY) studies/mutation.py --max-children 2 $(if $(MODULES),--modules $(MODULES))

clean:
	rm -rf $(VENV) results build/mutation mutants .mypy_cache .pytest_cache .ruff_cache
