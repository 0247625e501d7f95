"""DOLFINx backend of the Rayleigh–Bénard plant: below-onset Nu, boundary values, probes,
parameter errors and a dying worker. Skipped with the reason where DOLFINx is missing
(``make fem`` installs it on Debian 12)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from plants.rbc.fem_backend import FEMBackend, FEMWorkerError, available
from plants.rbc.model import RBCParams, bottom_profile, segment_temperatures

pytestmark = pytest.mark.xdist_group("rbc_fem")      # one worker process for the module


def _need_dolfinx() -> None:
    ok, why = available()
    if not ok:
        pytest.skip(why)


@pytest.fixture(scope="module")
def fem() -> Iterator[FEMBackend]:
    """A coarse (16 x 8 cells) backend below onset (Ra 100), shared by the module."""
    _need_dolfinx()
    with FEMBackend(RBCParams(ra=100.0, pr=0.7), nx_cells=16, ny_cells=8, dt=0.05) as backend:
        yield backend


def test_available_names_a_missing_interpreter() -> None:
    ok, why = available("/nonexistent/python3.11")
    assert not ok
    assert "/nonexistent/python3.11" in why


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"nx_cells": 0}, "nx_cells = 0"), ({"ny_cells": 2.5}, "ny_cells = 2.5"),
    ({"dt": -0.1}, "dt = -0.1"), ({"dt": float("nan")}, "dt = nan"),
    ({"stretch": 9.0}, "stretch = 9.0"),
])
def test_bad_parameters_name_the_value(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        FEMBackend(RBCParams(), **kwargs)      # type: ignore[arg-type]


def test_below_onset_physical_nu_is_one(fem: FEMBackend) -> None:
    fem.set_bottom(np.full(10, 2.0))
    fem.reset(start="conduction", noise=0.0)
    series = fem.advance(5)
    np.testing.assert_allclose(series[1:], 1.0, atol=1e-10)       # linear T: exact in Q2
    # the authors' start (Nu 1.79 at the walls) relaxes to conduction below onset
    fem.reset(seed=0, noise=1e-3)
    assert fem.nusselt()["bottom"] == pytest.approx(1.0 + 0.125 * np.pi / 0.5, rel=1e-3)
    series = fem.advance(200)
    assert series.shape == (3, 200)
    assert fem.time == pytest.approx(10.0)
    assert not fem.blown_up
    nu = fem.nusselt()
    for key in ("bottom", "top", "volume"):
        assert nu[key] == pytest.approx(1.0, abs=1e-3), key
    assert np.abs(fem.uy_midline()).max() < 1e-4


def test_bottom_values_equal_the_profile(fem: FEMBackend) -> None:
    temps = segment_temperatures(np.array([1.0, -1.0, 0.5, 0.0, -0.3, 0.9, -0.9, 0.2, 0.1,
                                           -0.5]))
    fem.reset(noise=0.0)
    fem.set_bottom(temps)
    want = bottom_profile(temps, fem.x_bottom)
    np.testing.assert_allclose(fem.bottom_values(), want, rtol=0, atol=1e-13)
    fem.advance(2)
    np.testing.assert_allclose(fem.bottom_values(), want, rtol=0, atol=1e-13)
    # the probes see the wall values at the wall dofs, and T = 1 on top
    x = fem.x_bottom[::7]
    vals = fem.probes(x, np.array([-1.0, 1.0]))
    np.testing.assert_allclose(vals[2, 0], bottom_profile(temps, x), atol=1e-12)
    np.testing.assert_allclose(vals[2, 1], 1.0, atol=1e-12)
    np.testing.assert_allclose(vals[:2], 0.0, atol=1e-12)          # no-slip
    assert np.all(np.diff(fem.x_bottom) > 0) and fem.x_bottom[0] == pytest.approx(0.0)
    fem.set_bottom(np.full(10, 2.0))


def test_probes_of_the_conduction_state(fem: FEMBackend) -> None:
    fem.set_bottom(np.full(10, 2.0))
    fem.reset(start="conduction", noise=0.0)
    x = np.linspace(0.0, 2.0 * np.pi, 7)             # 2 pi wraps to 0
    y = np.array([-0.9, -0.1, 0.33, 0.99])
    vals = fem.probes(x, y)
    assert vals.shape == (3, 4, 7)
    np.testing.assert_allclose(vals[2], np.broadcast_to((1.5 - y / 2)[:, None], (4, 7)),
                               atol=1e-12)
    np.testing.assert_allclose(vals[:2], 0.0, atol=1e-14)


def test_worker_side_errors_name_the_problem(fem: FEMBackend) -> None:
    with pytest.raises(FEMWorkerError, match=r"y = 2\.0"):
        fem.probes(np.array([0.0]), np.array([2.0]))
    with pytest.raises(ValueError, match="n_steps = -1"):
        fem.advance(-1)
    with pytest.raises(ValueError, match="shape"):
        fem.set_bottom(np.full(9, 2.0))
    assert fem.advance(1).shape == (3, 1)             # still serving


def test_dead_worker_raises_a_clear_error() -> None:
    _need_dolfinx()
    backend = FEMBackend(RBCParams(ra=100.0), nx_cells=4, ny_cells=2, dt=0.05)
    pid = backend.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(FEMWorkerError, match="died"):
        backend.advance(1)
    backend.close()
    backend.close()                                   # idempotent
    with pytest.raises(FEMWorkerError, match="closed"):
        backend.nusselt()


@pytest.mark.slow
def test_compare_study_smoke(tmp_path: Path) -> None:
    """The comparison study end to end on a coarse grid for a few time units."""
    _need_dolfinx()
    import json

    from tests.fixtures.studies import load_study

    study = load_study("rbc_fem_compare")
    rc = study.main(["--nx-cells", "16", "--ny-cells", "8", "--t-max", "3", "--spectral-t", "3",
                     "--chunk", "1", "--starts", "four_roll", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "results.json").read_text())
    row = data["comparisons"][0]
    assert row["rolls_fem"] == row["rolls_spectral"] == 4
    assert abs(row["rel_diff"]) < 0.02
    assert rc == 0
    prov = data["provenance"]  # this process's; the worker's versions beside it
    assert {"git_commit", "git_dirty", "packages", "threads", "cpu", "command"} <= set(prov)
    assert prov["packages"]["numpy"] == np.__version__
    assert data["fem_worker"]["dolfinx"].startswith("0.5.")
    assert data["fem_worker"]["numpy"] != np.__version__     # Debian's numpy 1.x, not the venv's
