"""plants.crystallization.model pinned (kills mutmut's survivors): parameter perturbation and grid
checks, the van Leer faces and the right-hand side written out by hand on small grids, the
analytic Jacobian against finite differences (also where only growth or only nucleation acts),
the solver calls ``advance`` makes (the plant's accuracy contract: BDF with the sparse analytic
Jacobian, or LSODA through ``odeint`` with the dense one, and the tolerances) and its failure
messages, and the outputs of ``simulate_open_loop`` recomputed from its distribution."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from scipy import sparse

import ctrlbench  # noqa: F401  (registers the plugins before plants.crystallization is imported)
import plants.crystallization.model as cm
from plants.crystallization.model import (
    CrystalParams,
    PopulationBalance,
    SizeGrid,
    SolverFailure,
    simulate_open_loop,
)

GRID = SizeGrid(l_min=2.0, l_max=62.0, n_cells=12)  # h = 5 um: centres 4.5, 9.5, ..., 59.5


# -- parameters and grid ---------------------------------------------------------------------
def test_perturbed_multiplies_each_kinetic_constant_by_its_own_factor():
    base = CrystalParams()
    p = base.perturbed(growth=(1.1, 0.9, 1.2), nucleation=(0.8, 1.3, 0.7))
    assert (p.k_g, p.e_g, p.g) == (base.k_g * 1.1, base.e_g * 0.9, base.g * 1.2)
    assert (p.k_b, p.b, p.n_b) == (base.k_b * 0.8, base.b * 1.3, base.n_b * 0.7)
    assert (p.rho_c, p.cp, p.u_heat) == (base.rho_c, base.cp, base.u_heat)


def test_size_grid_limits_and_refinement():
    assert SizeGrid(n_cells=10).n_cells == 10  # the smallest grid allowed
    for bad in (9, 12.0, True):
        with pytest.raises(ValueError, match=rf"integer n_cells >= 10, got {bad!r}$"):
            SizeGrid(n_cells=bad)  # type: ignore[arg-type]
    for lo, hi in ((0.0, 500.0), (5.0, 5.0), (1.0, math.inf)):
        with pytest.raises(ValueError, match=rf"0 < l_min < l_max, got {lo}, {hi}$"):
            SizeGrid(l_min=lo, l_max=hi)
    assert GRID.refined().n_cells == 24 and GRID.refined(3) == SizeGrid(2.0, 62.0, 36)


# -- van Leer faces ----------------------------------------------------------------------------
def test_van_leer_faces_and_weights_by_hand():
    z = np.array([1.0, 2.0, 4.0, 4.0, 3.0, 5.0])
    # a = z_f - z_{f-1} = [1, 2, 0, -1], b = z_{f+1} - z_f = [2, 0, -1, 2] for faces 1..4:
    # only face 1 has a * b > 0: z_face = 2 + a b / (a + b) = 8/3, w- = (b/(a+b))^2 = 4/9,
    # w+ = (a/(a+b))^2 = 1/9; the others (a zero or a sign change) are first order
    zf, wm, wp = cm._vanleer(z)
    np.testing.assert_allclose(zf, [1.0, 8 / 3, 4.0, 4.0, 3.0], rtol=1e-15)
    np.testing.assert_allclose(wm, [0.0, 4 / 9, 0.0, 0.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(wp, [0.0, 1 / 9, 0.0, 0.0, 0.0], rtol=1e-15)


# -- kinetics, right-hand side and Jacobian ----------------------------------------------------
def test_excess_has_a_zero_second_derivative_at_saturation_with_casadi():
    import casadi as ca

    from ctrlbench.model import casadi_ops

    s = ca.SX.sym("s")
    e = cm._excess(s, 1.05, casadi_ops())
    f = ca.Function("f", [s], [e, ca.gradient(e, s), ca.hessian(e, s)[0]])
    assert [float(v) for v in f(1.0)] == [0.0, 0.0, 0.0]
    assert float(f(1.2)[0]) == pytest.approx(0.2**1.05, rel=1e-14)


def smooth_state(n: int, c: float) -> np.ndarray:
    i = np.arange(n, dtype=float)
    return np.concatenate((1.0 + 0.3 * i + 0.02 * i**2, [c]))  # increasing, convex: a, b > 0


def kinetics(params: CrystalParams, c: float, temp: float, m_t: float) -> tuple[float, float]:
    """(G [um/s], B) from the formulas of the module docstring."""
    csat = (params.sol_slope * temp + params.sol_offset) / 100
    s = c / csat
    if s <= 1:
        return 0.0, 0.0
    g = params.k_g * math.exp(-params.e_g / (params.r_gas * (temp + 273.15))) * (s - 1) ** params.g
    b = params.k_b * m_t**params.b * (s - 1) ** params.n_b
    return g * 1e6, b


def rhs_by_hand(params: CrystalParams, y: np.ndarray, temp: float, f_scale: float) -> np.ndarray:
    x = GRID.centers
    h, n = GRID.width, GRID.n_cells
    z = y[:n]
    k3 = params.k_v * params.rho_c * 1e-18
    m_t = k3 * f_scale * h * float(np.sum(z * x**3))
    g, b = kinetics(params, float(y[n]), temp, m_t)
    # linear interpolation to the faces is van Leer where a == b; here a, b > 0: harmonic slope
    a, bb = z[1:-1] - z[:-2], z[2:] - z[1:-1]
    faces = np.concatenate(([z[0]], z[1:-1] + a * bb / (a + bb)))
    flux = g * faces
    out = np.empty(n + 1)
    out[0] = (b / f_scale - flux[0]) / h
    out[1 : n - 1] = (flux[:-1] - flux[1:]) / h
    out[n - 1] = flux[-1] / h
    out[n] = -k3 * (f_scale * float(np.sum(flux * np.diff(x**3))) + b * x[0] ** 3)
    return out


# parameter sets: both kinetics; no nucleation (k_b = 0); no growth (k_g = 0); G exactly 1 um/s
# with no nucleation; B exactly 1 with no growth (b = 0: M_T^0 = 1); and B < 1 with growth
EXACT = dict(e_g=0.0, g=1.0, n_b=1.0, sol_slope=0.0, sol_offset=50.0)  # S = c / 0.5
CASES = {
    "both": (CrystalParams(), 0.74, 33.0),
    "growth only": (CrystalParams(k_b=0.0), 0.74, 33.0),
    "nucleation only": (CrystalParams(k_g=0.0), 0.74, 33.0),
    "G = 1 um/s only": (CrystalParams(k_g=2e-6, k_b=0.0, **EXACT), 0.75, 20.0),
    "B = 1 only": (CrystalParams(k_g=0.0, k_b=2.0, b=0.0, **EXACT), 0.75, 20.0),
    "B < 1": (CrystalParams(k_b=0.02), 0.74, 33.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rhs_by_hand_on_a_small_grid(case):
    params, c, temp = CASES[case]
    pbe = PopulationBalance(params, GRID)
    y, f_scale = smooth_state(GRID.n_cells, c), 3.0e6
    g, b, _, _, _ = pbe._kinetics(y, temp, f_scale)
    if case == "G = 1 um/s only":
        assert (g, b) == (1.0, 0.0)
    if case == "B = 1 only":
        assert (g, b) == (0.0, 1.0)
    if case == "B < 1":
        assert 0.0 < b < 1.0 and g > 0.0
    expected = rhs_by_hand(params, y, temp, f_scale)
    assert np.any(expected != 0.0)
    np.testing.assert_allclose(pbe.rhs(y, temp, f_scale), expected, rtol=1e-12,
                               atol=1e-14 * np.abs(expected).max())


def fd_jacobian(pbe: PopulationBalance, y: np.ndarray, temp: float, f_scale: float
                ) -> np.ndarray:
    cols = []
    for k in range(y.size):
        step = 1e-6 * max(abs(y[k]), 1e-3)
        up, down = y.copy(), y.copy()
        up[k] += step
        down[k] -= step
        cols.append((pbe.rhs(up, temp, f_scale) - pbe.rhs(down, temp, f_scale)) / (2 * step))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("case", list(CASES))
def test_jacobian_matches_finite_differences(case):
    params, c, temp = CASES[case]
    pbe = PopulationBalance(params, GRID)
    y, f_scale = smooth_state(GRID.n_cells, c), 3.0e6
    jac = pbe.jacobian(y, temp, f_scale)
    assert sparse.issparse(jac) and jac.shape == (13, 13)
    fd = fd_jacobian(pbe, y, temp, f_scale)
    assert np.abs(fd).max() > 0.0
    np.testing.assert_allclose(jac.toarray(), fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())
    # row 0 beyond the band is dB/dz_k / (f_scale h) alone, too small next to the transport
    # terms for finite differences: by hand, B = k_b M_T^b (S-1)^n_b with M_T = k3 f h sum z L^3
    # gives dB/dz_k = b B / M_T k3 f h L_k^3, so the entry is b B / M_T k3 L_k^3
    x, k3 = GRID.centers, params.k_v * params.rho_c * 1e-18
    m_t = k3 * f_scale * GRID.width * float(np.sum(y[:12] * x**3))
    _, b = kinetics(params, c, temp, m_t)
    far = params.b * b / m_t * k3 * x[2:] ** 3
    np.testing.assert_allclose(jac.toarray()[0, 2:12], far, rtol=1e-10, atol=1e-300)
    assert (np.abs(far).max() > 0) == (case in ("both", "B < 1", "nucleation only"))


def test_jacobian_without_crystals_but_with_zeroth_order_nucleation():
    # b = 0: B = k_b (S - 1)^n_b even at M_T = 0, where dB/dz must be 0, not 0/0
    params = CrystalParams(b=0.0)
    pbe = PopulationBalance(params, GRID)
    y = np.concatenate((np.zeros(GRID.n_cells), [0.74]))
    jac = pbe.jacobian(y, 33.0, 1.0e6).toarray()
    assert np.all(np.isfinite(jac))
    np.testing.assert_allclose(jac, fd_jacobian(pbe, y, 33.0, 1.0e6), rtol=1e-5,
                               atol=1e-9 * np.abs(jac).max())


def test_crystal_mass_of_the_seed_is_the_seed_mass_fraction():
    params = CrystalParams(rho_c=1500.0)
    pbe = PopulationBalance(params, GRID)
    y, f_scale = pbe.initial_state(30.0, 6.0, 0.12, 0.7)
    assert f_scale != 1.0 and GRID.width != 1.0
    x = GRID.centers
    by_hand = params.k_v * 1500.0 * 1e-18 * f_scale * GRID.width * float(np.sum(y[:12] * x**3))
    assert pbe.crystal_mass(y, f_scale) == pytest.approx(by_hand, rel=1e-13)
    assert pbe.crystal_mass(y, f_scale) == pytest.approx(0.12, rel=1e-12)
    with pytest.raises(ValueError, match=r"mass fraction 0.0 has no mass"):
        pbe.initial_state(30.0, 6.0, 0.0, 0.7)


# -- advance: the solver calls and their failures --------------------------------------------
class Spy:
    """Records the keyword arguments of one solver call, then makes the real call."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self.real(*args, **kwargs)


def seeded(params: CrystalParams | None = None) -> tuple[PopulationBalance, np.ndarray, float]:
    pbe = PopulationBalance(params, GRID)
    y, f_scale = pbe.initial_state(29.5, 6.0, 0.12, 0.74)  # a cell centre: peak exactly 1
    assert y[:12].max() == 1.0
    y[:12] *= 0.5  # peak 0.5, so the absolute tolerance 1e-8 * peak is not 1e-8
    return pbe, y, f_scale


def test_advance_uses_bdf_with_the_sparse_jacobian_and_its_tolerances(monkeypatch):
    spy = Spy(cm.solve_ivp)
    monkeypatch.setattr(cm, "solve_ivp", spy)
    pbe, y, f_scale = seeded()
    y_end, temp = pbe.advance(y, f_scale, 600.0, 33.0, 25.0, 120.0)
    (args, kw), = spy.calls
    assert args[1] == (600.0, 720.0)
    assert kw["method"] == "BDF" and kw["rtol"] == 1e-6
    atol = kw["atol"]
    np.testing.assert_array_equal(atol[:12], np.full(12, 0.5e-8))
    assert atol[12] == 1e-10
    assert sparse.issparse(kw["jac"](600.0, y))
    assert temp == pytest.approx(25.0 + 8.0 * math.exp(-CrystalParams().heat_rate * 120.0),
                                 rel=1e-14)
    assert y_end[12] < 0.74  # it crystallised
    same, _ = pbe.advance(y, f_scale, 600.0, 33.0, 25.0, 120.0, rtol=1e-6, method="BDF")
    np.testing.assert_array_equal(same, y_end)


def test_advance_with_lsoda_calls_odeint_with_the_dense_jacobian(monkeypatch):
    spy = Spy(cm.odeint)
    monkeypatch.setattr(cm, "odeint", spy)
    pbe, y, f_scale = seeded()
    y_end, _ = pbe.advance(y, f_scale, 0.0, 33.0, 25.0, 120.0, rtol=1e-5, method="LSODA")
    (args, kw), = spy.calls
    assert list(args[2]) == [0.0, 120.0]
    assert kw["rtol"] == 1e-5 and kw["mxstep"] == 100_000 and kw["tfirst"]
    np.testing.assert_array_equal(kw["atol"][:12], np.full(12, 0.5e-8))
    assert kw["atol"][12] == 1e-10
    jac = kw["Dfun"](0.0, y)
    assert isinstance(jac, np.ndarray) and jac.shape == (13, 13)
    assert y_end.dtype == np.float64 and y_end[12] < 0.74


def test_lsoda_silences_only_odeint_warnings(monkeypatch):
    real = cm.odeint

    def noisy(*args: Any, **kwargs: Any) -> Any:
        warnings.warn("odeint chatter", cm.ODEintWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cm, "odeint", noisy)
    pbe, y, f_scale = seeded()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pbe.advance(y, f_scale, 0.0, 33.0, 25.0, 60.0, method="LSODA")
    assert [str(w.message) for w in caught] == ["something else"]


def test_solver_failures_name_the_method_the_time_and_the_reason(monkeypatch):
    pbe, y, f_scale = seeded()

    class Sol:
        status, message = -1, "Required step size is less than spacing between numbers."
        y = np.zeros((13, 1))

    monkeypatch.setattr(cm, "solve_ivp", lambda *a, **k: Sol())
    with pytest.raises(SolverFailure, match=r"^BDF failed at t = 1200 s: Required step size"):
        pbe.advance(y, f_scale, 1200.0, 33.0, 25.0, 60.0)
    Sol.status, Sol.y = 0, np.full((13, 1), np.nan)
    with pytest.raises(SolverFailure, match=r"^BDF gave a non-finite state after t = 1200 s$"):
        pbe.advance(y, f_scale, 1200.0, 33.0, 25.0, 60.0)

    def raises(*a: Any, **k: Any) -> Any:
        raise ValueError("bad input")

    monkeypatch.setattr(cm, "odeint", raises)
    with pytest.raises(SolverFailure, match=r"^LSODA failed at t = 600 s: bad input$"):
        pbe.advance(y, f_scale, 600.0, 33.0, 25.0, 60.0, method="LSODA")
    monkeypatch.setattr(cm, "odeint", lambda *a, **k: (np.zeros((2, 13)),
                                                       {"message": "Excess work done."}))
    with pytest.raises(SolverFailure, match=r"^LSODA failed at t = 600 s: Excess work done\.$"):
        pbe.advance(y, f_scale, 600.0, 33.0, 25.0, 60.0, method="LSODA")


# -- simulate_open_loop ----------------------------------------------------------------------
def open_loop(**kw: Any) -> Any:
    cond: dict[str, Any] = dict(seed_mean=30.0, seed_sd=6.0, seed_mass_fraction=0.12, c0=0.74,
                                temp0=33.0, grid=GRID, dt=90.0)
    cond.update(kw)
    return simulate_open_loop(**cond)


def test_open_loop_outputs_from_its_distribution():
    r = open_loop(jacket_profile=[[30], [27]])  # ints, as a column: flattened, as floats
    assert r.jacket.dtype == np.float64 and r.jacket.tolist() == [30.0, 27.0]
    assert r.t.tolist() == [0.0, 90.0, 180.0]
    np.testing.assert_array_equal(r.sizes, GRID.centers)
    f, x, h = r.distribution, GRID.centers, GRID.width
    assert f.shape == (3, 12)
    mu = np.stack([h * f @ (x * 1e-6) ** j for j in range(5)], axis=1)
    np.testing.assert_allclose(r.moments, mu, rtol=1e-12)
    np.testing.assert_allclose(r.mean_size, (f @ x**4) / (f @ x**3), rtol=1e-12)
    np.testing.assert_allclose(r.top_mass_fraction, f[:, -1] * x[-1] ** 3 / (f @ x**3),
                               rtol=1e-12)
    assert r.top_mass_fraction[0] > 1e-30  # the seed reaches the last cell, barely
    assert r.moments[0, 3] * CrystalParams().k_v * 1540.0 == pytest.approx(0.12, rel=1e-12)


def test_open_loop_top_fraction_on_a_sub_micron_grid():
    # sizes < 1 um: sum F L^3 (um^3) is far below 1, which the 1e-300 floor leaves alone
    grid = SizeGrid(l_min=0.01, l_max=0.61, n_cells=10)
    r = open_loop(jacket_profile=[33.0], grid=grid, seed_mean=0.4, seed_sd=0.15)
    f, x = r.distribution, grid.centers
    np.testing.assert_allclose(r.top_mass_fraction, f[:, -1] * x[-1] ** 3 / (f @ x**3),
                               rtol=1e-12)
    assert 0.05 < r.top_mass_fraction[0] < 1.0


def test_open_loop_passes_params_rtol_method_and_period_start_on(monkeypatch):
    calls: list[tuple[float, float, dict[str, Any]]] = []
    real = PopulationBalance.advance

    def spy(self: PopulationBalance, y: Any, f_scale: float, t0: float, temp0: float,
            jacket: float, duration: float, **kw: Any) -> Any:
        calls.append((t0, self.params.k_g, kw))
        return real(self, y, f_scale, t0, temp0, jacket, duration, **kw)

    monkeypatch.setattr(PopulationBalance, "advance", spy)
    params = CrystalParams().perturbed(growth=(1.3, 1.0, 1.0))
    open_loop(jacket_profile=[30.0, 28.0, 26.0], params=params, rtol=1e-5, method="LSODA")
    assert [t0 for t0, _, _ in calls] == [0.0, 90.0, 180.0]
    assert all(k_g == params.k_g for _, k_g, _ in calls)
    assert all(kw == {"rtol": 1e-5, "method": "LSODA"} for _, _, kw in calls)
