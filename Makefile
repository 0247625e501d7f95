# ctrlbench: `make demo` runs the main job on embedded defaults, `make test` passes the tests.
# Both create .venv themselves; torch is installed first, pinned (an unpinned torch pulls CUDA).
# `make fem` (optional, not part of demo/test) installs Debian's DOLFINx 0.5 for the
# Rayleigh-Benard FEM backend (plants/rbc/fem_backend.py); its tests skip without it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: demo test test-all lint typecheck pytest mutation fem clean

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

# DOLFINx 0.5 for the RBC FEM backend (issue 11): Debian 12's python3-dolfinx, run by the system
# /usr/bin/python3.11 in a worker process (never in the numpy-2 venv); ~1 min, ~1.1 GB. Where
# there is no apt-get (or not Debian 12) it says so and stops; the backend's tests then skip.
APT = $(if $(filter 0,$(shell id -u)),,sudo )apt-get
fem:
	@if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make fem: no apt-get here; install DOLFINx 0.5 for /usr/bin/python3.11 yourself" \
		"(Debian 12: python3-dolfinx); the FEM backend's tests skip without it" >&2; exit 1; fi
	@grep -q '^12' /etc/debian_version 2>/dev/null \
		|| echo "make fem: not Debian 12 ($$(cat /etc/debian_version 2>/dev/null || echo unknown));" \
			"the worker is written for DOLFINx 0.5 and /usr/bin/python3.11" >&2
	$(APT) install -y python3-dolfinx || ($(APT) update && $(APT) install -y python3-dolfinx)
	@if [ -x $(PY) ]; then $(PY) -c "from plants.rbc.fem_backend import available; \
		ok, why = available(); print('DOLFINx backend:', 'available' if ok else why)"; fi

clean:
	rm -rf $(VENV) results build/mutation mutants .mypy_cache .pytest_cache .ruff_cache
