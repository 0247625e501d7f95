"""Dextrose batch cooling crystallization: kinetics, finite-volume population balance, open loop.

The plant of Sitapure & Kwon (2023, LSTMc), as ``MODELS.md`` section 3 states it (equations taken
from the authors' public CrystalGPT code, arXiv 2306.03099). Imports numpy and scipy only.

Equations (``T`` in deg C in the states, ``T_K = T + 273.15`` in the Arrhenius term):

- solubility ``c_sat = (0.804 T + 29.94) / 100`` [kg/kg] (valid 30-50 C), ``S = c / c_sat``;
- growth ``G = 1.14e-3 exp(-29549 / (R T_K)) (S - 1)^1.05`` [m/s], size independent;
- nucleation ``B = 4.5e4 M_T^0.49 (S - 1)^1.41`` [#/(s kg)], with ``M_T = k_v rho_c mu_3``;
  both are zero for ``S <= 1`` (no dissolution);
- population balance ``dF/dt + d(G F)/dL = 0`` on ``[L_min, L_max] = [1, 500]`` um, nucleation
  boundary ``G F(L_min) = B`` (i.e. ``F(L_min) = B / G``);
- solute ``dc/dt = -3 k_v rho_c sum(G F L^2 dL) - B L_min^3 k_v rho_c``;
- energy ``dT/dt = U A (T_j - T) / (m C_p)``.

Units. ``c`` is kg dextrose per kg slurry; ``F`` is a number density per kg slurry and per unit
size; moments are ``mu_j = sum F L^j dL`` with ``L`` in metres, so ``mu_j`` is in m^j/kg and
``M_T = k_v rho_c mu_3`` is kg crystals per kg slurry. Inside the solver sizes are in um
(``G`` converted to um/s) and ``F`` in #/(kg um), scaled by the peak of the seed density.

Discretisation (documented choices where MODELS.md leaves room):

- ``n_cells`` equal cells on [1, 500] um; ``F_i`` is the cell average at the centre ``L_i``.
- Face fluxes ``G F_face`` with ``F_face`` reconstructed upwind by the van Leer limiter
  (second order where smooth, no new extrema); first order at the first interior face; the
  inflow face carries the nucleation flux ``B``; the outer face at 500 um is closed (crystals
  that reach the last cell stay there: :attr:`OpenLoopResult.top_mass_fraction` reports it).
- The solute balance is the discrete form of the stated one that keeps total dextrose
  ``c + k_v rho_c mu_3`` exactly constant: ``3 sum(G F L^2 dL)`` becomes
  ``sum_faces G F_face (L_{i+1}^3 - L_i^3)`` (the midpoint rule on each face, second order) and
  the nuclei are counted at the first cell centre ``L_0`` instead of ``L_min``
  (``B L_0^3 k_v rho_c``, ~1e-12 of the growth term).
- The energy balance is linear with ``T_j`` held over a control period, so ``T(t)`` is its exact
  solution; the PBE and solute balance are integrated by scipy's ``BDF`` (``solve_ivp``, sparse
  analytic Jacobian) or ODEPACK's ``LSODA`` (``odeint``, dense analytic Jacobian). ``LSODA`` goes
  through ``odeint``, not ``solve_ivp``: in scipy 1.17 every ``solve_ivp(method="LSODA")`` call
  keeps its work array alive (0.5 MB per call at 250 cells: ~72 MB per 144-step batch, measured
  with ``tracemalloc``), which filled 24 GB within ~1,200 batches of the LSTMc data; ``odeint``
  runs the same LSODA steps without the leak and with less Python overhead.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.integrate import ODEintWarning, odeint, solve_ivp

__all__ = [
    "CONTROL_PERIOD",
    "MATH_OPS",
    "CrystalParams",
    "OpenLoopResult",
    "PopulationBalance",
    "SizeGrid",
    "SolverFailure",
    "growth_rate",
    "nucleation_rate",
    "simulate_open_loop",
    "solubility",
]

FloatArray = NDArray[np.float64]

CONTROL_PERIOD = 600.0
"""Control period and output interval [s] (10 min); a batch is 144 of them (24 h)."""

MATH_OPS = SimpleNamespace(exp=math.exp, fmax=max, power=math.pow,
                           if_else=lambda cond, a, b: a if cond else b)
"""Scalar counterpart of :data:`ctrlbench.model.NUMPY_OPS` for the kinetics (Python floats)."""

_K = 273.15


@dataclass(frozen=True)
class CrystalParams:
    """Physical parameters of the dextrose crystallizer (MODELS.md section 3).

    Source: Sitapure & Kwon (2023) via the authors' CrystalGPT code (arXiv 2306.03099,
    ``crystallization_kinetics.py``/``simulation.py``), as collected in MODELS.md.

    Attributes
    ----------
    k_g:
        Growth prefactor [m/s].
    e_g:
        Growth activation energy [J/mol] (``G ~ exp(-e_g / (R T_K))``).
    g:
        Growth order in ``S - 1`` [-].
    k_b:
        Nucleation prefactor [#/(s kg)] (per kg slurry).
    b:
        Nucleation order in the suspension density ``M_T`` [-].
    n_b:
        Nucleation order in ``S - 1`` [-].
    sol_slope, sol_offset:
        Solubility ``c_sat = (sol_slope T[C] + sol_offset) / 100`` [kg/kg]; valid 30-50 C.
    rho_c:
        Crystal density [kg/m^3].
    k_v:
        Volume shape factor [-] (``pi/6``: spheres).
    u_heat:
        Jacket heat-transfer coefficient ``U`` [W/(m^2 K)].
    area:
        Jacket area ``A`` [m^2].
    mass:
        Slurry mass ``m`` [kg] (the basis: 1 kg).
    cp:
        Slurry heat capacity ``C_p`` [J/(kg K)].
    r_gas:
        Gas constant [J/(mol K)].
    """

    k_g: float = 1.14e-3
    e_g: float = 29549.0
    g: float = 1.05
    k_b: float = 4.5e4
    b: float = 0.49
    n_b: float = 1.41
    sol_slope: float = 0.804
    sol_offset: float = 29.94
    rho_c: float = 1540.0
    k_v: float = math.pi / 6.0
    u_heat: float = 200.0
    area: float = 0.01
    mass: float = 1.0
    cp: float = 4182.0
    r_gas: float = 8.314

    @property
    def heat_rate(self) -> float:
        """``U A / (m C_p)`` [1/s]: the inverse thermal time constant (~1/2091 s)."""
        return self.u_heat * self.area / (self.mass * self.cp)

    def perturbed(self, growth: tuple[float, float, float] = (1.0, 1.0, 1.0),
                  nucleation: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> CrystalParams:
        """A copy with the kinetic constants multiplied by factors ("a different system").

        Parameters
        ----------
        growth:
            Factors on ``(k_g, e_g, g)``.
        nucleation:
            Factors on ``(k_b, b, n_b)``.
        """
        return dataclasses.replace(
            self, k_g=self.k_g * growth[0], e_g=self.e_g * growth[1], g=self.g * growth[2],
            k_b=self.k_b * nucleation[0], b=self.b * nucleation[1], n_b=self.n_b * nucleation[2])

    def as_dict(self) -> dict[str, float]:
        """All fields by name (for :class:`~ctrlbench.model.PlantModel` ``params``)."""
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}


# -- kinetics, written once over an ops namespace (math floats, numpy or casadi) ----------------
def solubility(temp: Any, p: Any) -> Any:
    """Saturation concentration ``c_sat`` [kg/kg] at ``temp`` [C]; ``p`` maps parameter names."""
    return (p["sol_slope"] * temp + p["sol_offset"]) / 100.0


def _excess(s: Any, exponent: float, ops: Any) -> Any:
    """``max(s - 1, 0)^exponent``, written so that its casadi derivatives stay finite (zero) at
    ``s <= 1``: ``fmax(s - 1, 0)^e`` alone has a NaN second derivative there for ``e < 2``,
    which forces an optimiser onto a quasi-Newton Hessian."""
    return ops.if_else(s > 1.0, ops.power(ops.fmax(s - 1.0, 0.0), exponent), 0.0)


def growth_rate(s: Any, temp: Any, p: Any, ops: Any) -> Any:
    """Size-independent growth rate ``G`` [m/s] at supersaturation ratio ``s`` and ``temp`` [C]."""
    return (p["k_g"] * ops.exp(-p["e_g"] / (p["r_gas"] * (temp + _K)))
            * _excess(s, p["g"], ops))


def nucleation_rate(s: Any, m_t: Any, p: Any, ops: Any) -> Any:
    """Nucleation rate ``B`` [#/(s kg)] at ``s`` and suspension density ``m_t`` [kg/kg]."""
    return (p["k_b"] * ops.power(ops.fmax(m_t, 0.0), p["b"])
            * _excess(s, p["n_b"], ops))


@dataclass(frozen=True)
class SizeGrid:
    """Equal finite-volume cells on ``[l_min, l_max]`` [um].

    Attributes
    ----------
    l_min, l_max:
        Size range [um] (MODELS.md: 1-500 um).
    n_cells:
        Number of cells (default 250, 2 um wide as in CrystalGPT).
    """

    l_min: float = 1.0
    l_max: float = 500.0
    n_cells: int = 250

    def __post_init__(self) -> None:
        if not (0 < self.l_min < self.l_max and math.isfinite(self.l_max)):
            raise ValueError(f"size grid needs 0 < l_min < l_max, got {self.l_min}, {self.l_max}")
        if isinstance(self.n_cells, bool) or not isinstance(self.n_cells, int) or (
                self.n_cells < 10):
            raise ValueError(f"size grid needs an integer n_cells >= 10, got {self.n_cells!r}")

    @property
    def width(self) -> float:
        """Cell width [um]."""
        return (self.l_max - self.l_min) / self.n_cells

    @property
    def centers(self) -> FloatArray:
        """Cell centres [um]."""
        return self.l_min + (np.arange(self.n_cells, dtype=np.float64) + 0.5) * self.width

    def refined(self, factor: int = 2) -> SizeGrid:
        """The same range with ``factor`` times as many cells."""
        return dataclasses.replace(self, n_cells=self.n_cells * factor)


class SolverFailure(RuntimeError):
    """The stiff integrator failed or produced a non-finite state."""


def _vanleer(z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Upwind (``G > 0``) van Leer face values and their weights.

    Returns ``(z_face, w_minus, w_plus)`` for the ``n - 1`` faces between cells ``f`` and
    ``f + 1``: ``z_face[f] = z_f + sigma_f / 2`` with the harmonic slope
    ``sigma = 2 a b / (a + b)`` of ``a = z_f - z_{f-1}``, ``b = z_{f+1} - z_f`` when they share a
    sign, else 0 (first order at face 0). ``d z_face / d(z_{f-1}, z_f, z_{f+1}) =
    (-w_minus, 1 + w_minus - w_plus, w_plus)`` with ``w_minus = (b/(a+b))^2`` and
    ``w_plus = (a/(a+b))^2``.
    """
    a = z[1:-1] - z[:-2]
    b = z[2:] - z[1:-1]
    same = a * b > 0.0
    s = np.where(same, a + b, 1.0)
    ra = np.where(same, a / s, 0.0)
    rb = np.where(same, b / s, 0.0)
    zf = np.empty(z.size - 1)
    zf[0] = z[0]
    zf[1:] = z[1:-1] + a * rb
    wm = np.zeros(z.size - 1)
    wp = np.zeros(z.size - 1)
    wm[1:] = rb * rb
    wp[1:] = ra * ra
    return zf, wm, wp


class PopulationBalance:
    """Finite-volume PBE plus solute balance for one parameter set and grid.

    The solver state is ``y = [z_0 .. z_{n-1}, c]`` with ``F_i = f_scale z_i`` [#/(kg um)].
    The slurry temperature over a control period is the exact solution of the energy balance.

    Parameters
    ----------
    params:
        Physical parameters.
    grid:
        Size grid.
    """

    def __init__(self, params: CrystalParams | None = None, grid: SizeGrid | None = None) -> None:
        self.params = params or CrystalParams()
        self.grid = grid or SizeGrid()
        self._p = self.params.as_dict()
        n, h = self.grid.n_cells, self.grid.width
        x = self.grid.centers
        self.n, self.h, self.x = n, h, x
        self._x3 = x**3
        self._d3 = np.diff(self._x3)  # L_{i+1}^3 - L_i^3 [um^3] per interior face
        self._k3 = self.params.k_v * self.params.rho_c * 1e-18  # kg/kg per (#/kg um^3)
        # fixed Jacobian pattern: bands -2..+1 of the PBE block, dense row 0 (nucleation),
        # dense column and row of c; permutation from this COO order to CSC, no duplicates
        i = np.arange(n)
        rows = np.concatenate((i[2:], i[1:], i, i[:-1], np.zeros(n - 2, int), i,
                               np.full(n + 1, n)))
        cols = np.concatenate((i[:-2], i[:-1], i, i[1:], i[2:], np.full(n, n),
                               np.arange(n + 1)))
        order = sparse.csc_matrix((np.arange(1.0, rows.size + 1), (rows, cols)),
                                  shape=(n + 1, n + 1))
        order.sort_indices()
        self._perm = order.data.astype(np.int64) - 1
        self._csc = (order.indices.copy(), order.indptr.copy())

    # -- state helpers ----------------------------------------------------------------------
    def initial_state(self, seed_mean: float, seed_sd: float, seed_mass_fraction: float,
                      c0: float) -> tuple[FloatArray, float]:
        """``(y0, f_scale)`` for a normal seed distribution.

        ``F`` is proportional to the normal density with ``seed_mean``/``seed_sd`` [um] at the
        cell centres and scaled so the discrete ``k_v rho_c mu_3`` equals ``seed_mass_fraction``
        [kg seed per kg slurry]; ``c0`` [kg/kg] is the dissolved dextrose.
        """
        shape = np.exp(-0.5 * ((self.x - seed_mean) / seed_sd) ** 2)
        mass_per_unit = self._k3 * self.h * float(shape @ self._x3)
        if not (seed_mass_fraction > 0 and mass_per_unit > 0):
            raise ValueError(
                f"seed distribution N({seed_mean}, {seed_sd}) um with mass fraction "
                f"{seed_mass_fraction} has no mass on the grid [{self.grid.l_min}, "
                f"{self.grid.l_max}] um")
        f_scale = seed_mass_fraction / mass_per_unit  # F = f_scale * shape, peak = f_scale
        return np.concatenate((shape, [c0])), f_scale

    def moments(self, y: FloatArray, f_scale: float, orders: int = 5) -> FloatArray:
        """``mu_0 .. mu_{orders-1}`` [m^j/kg] of the state ``y`` (or a batch ``(k, n + 1)``)."""
        z = np.asarray(y)[..., : self.n]
        out = [f_scale * self.h * (z @ (self.x**j)) * 1e-6**j for j in range(orders)]
        return np.stack(out, axis=-1)

    def crystal_mass(self, y: FloatArray, f_scale: float) -> float:
        """``M_T = k_v rho_c mu_3`` [kg/kg]."""
        return float(self._k3 * f_scale * self.h * (y[: self.n] @ self._x3))

    def temperature(self, t: float, t0: float, temp0: float, jacket: float) -> float:
        """Exact slurry temperature [C] at ``t`` for ``T(t0) = temp0`` and constant ``jacket``."""
        return jacket + (temp0 - jacket) * math.exp(-self.params.heat_rate * (t - t0))

    # -- right-hand side and Jacobian -------------------------------------------------------
    def _kinetics(self, y: FloatArray, temp: float, f_scale: float
                  ) -> tuple[float, float, float, float, float]:
        """``(G [um/s], B, dG/dc, dB/dc, M_T)`` at state ``y`` and ``temp`` [C]."""
        p = self._p
        c = float(y[self.n])
        csat = solubility(temp, p)
        s = c / csat
        m_t = self._k3 * f_scale * self.h * float(y[: self.n] @ self._x3)
        if s <= 1.0:
            return 0.0, 0.0, 0.0, 0.0, m_t
        g = growth_rate(s, temp, p, MATH_OPS) * 1e6
        b = nucleation_rate(s, m_t, p, MATH_OPS)
        ds = 1.0 / ((s - 1.0) * csat)  # d ln(S - 1) / dc
        return g, b, g * p["g"] * ds, b * p["n_b"] * ds, m_t

    def rhs(self, y: FloatArray, temp: float, f_scale: float) -> FloatArray:
        """``dy/dt`` [1/s] at slurry temperature ``temp`` [C]."""
        g, b, _, _, _ = self._kinetics(y, temp, f_scale)
        out = np.zeros(self.n + 1)
        if g == 0.0 and b == 0.0:
            return out
        n, h = self.n, self.h
        zf, _, _ = _vanleer(y[:n])
        flux = g * zf
        out[0] = (b / f_scale - flux[0]) / h
        out[1 : n - 1] = (flux[:-1] - flux[1:]) / h
        out[n - 1] = flux[-1] / h
        out[n] = -self._k3 * (f_scale * float(flux @ self._d3) + b * self._x3[0])
        return out

    def jacobian(self, y: FloatArray, temp: float, f_scale: float) -> sparse.csc_matrix:
        """Analytic ``d(dy/dt)/dy`` (sparse) at ``temp`` [C]; keeps ``e^T J = 0`` for the
        conserved total dextrose ``e``."""
        n = self.n
        g, b, dg_dc, db_dc, m_t = self._kinetics(y, temp, f_scale)
        if g == 0.0 and b == 0.0:
            return sparse.csc_matrix((n + 1, n + 1))
        zf, wm, wp = _vanleer(y[:n])
        # padded face weights (index f + 1 for face f = -1 .. n-1; the end faces carry none)
        wm_p = np.concatenate(([0.0], wm, [0.0]))
        wp_p = np.concatenate(([0.0], wp, [0.0]))
        w0_p = np.concatenate(([0.0], 1.0 + wm - wp, [0.0]))
        gh = g / self.h
        sub2, sub1 = -gh * wm_p[2:n], gh * (w0_p[1:n] + wm_p[2 : n + 1])
        diag, sup1 = gh * (wp_p[:n] - w0_p[1 : n + 1]), -gh * wp_p[1:n]
        if m_t > 0 and b > 0:
            db_dz = (b * self.params.b / m_t) * self._k3 * f_scale * self.h * self._x3
        else:
            db_dz = np.zeros(n)
        row0 = db_dz / (f_scale * self.h)
        diag[0] += row0[0]
        sup1[0] += row0[1]
        col_c = np.empty(n)
        col_c[0] = db_dc / (f_scale * self.h) - dg_dc * zf[0] / self.h
        col_c[1 : n - 1] = dg_dc * (zf[:-1] - zf[1:]) / self.h
        col_c[n - 1] = dg_dc * zf[-1] / self.h
        d3 = self._d3
        dface_d3 = np.zeros(n)  # sum_f d z_face[f] / d z_k (L_{f+1}^3 - L_f^3)
        dface_d3[:-1] += (1.0 + wm - wp) * d3
        dface_d3[:-2] -= wm[1:] * d3[1:]
        dface_d3[1:] += wp * d3
        row_c = -self._k3 * (f_scale * g * dface_d3 + self._x3[0] * db_dz)
        jcc = -self._k3 * (f_scale * dg_dc * float(zf @ self._d3) + self._x3[0] * db_dc)
        data = np.concatenate((sub2, sub1, diag, sup1, row0[2:], col_c, row_c, [jcc]))
        return sparse.csc_matrix((data[self._perm], *self._csc), shape=(n + 1, n + 1))

    # -- integration ------------------------------------------------------------------------
    def advance(self, y: FloatArray, f_scale: float, t0: float, temp0: float, jacket: float,
                duration: float, *, rtol: float = 1e-6, method: str = "BDF"
                ) -> tuple[FloatArray, float]:
        """Integrate ``duration`` seconds with constant ``jacket`` [C]; ``(y, T)`` at the end.

        Raises
        ------
        SolverFailure
            When the integrator fails or the state turns non-finite.
        """
        def temp(t: float) -> float:
            return self.temperature(t, t0, temp0, jacket)

        def fun(t: float, yy: FloatArray) -> FloatArray:
            return self.rhs(yy, temp(t), f_scale)

        def jac(t: float, yy: FloatArray) -> Any:
            j = self.jacobian(yy, temp(t), f_scale)
            return j if method == "BDF" else j.toarray()

        atol = np.full(self.n + 1, 1e-8 * float(max(np.max(np.abs(y[: self.n])), 1e-300)))
        atol[self.n] = 1e-10
        if method == "LSODA":
            return self._odeint(fun, jac, y, t0, duration, rtol, atol), temp(t0 + duration)
        try:
            sol = solve_ivp(fun, (t0, t0 + duration), y, method=method, jac=jac, rtol=rtol,
                            atol=atol, t_eval=None, dense_output=False)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError) as exc:
            raise SolverFailure(f"{method} failed at t = {t0:g} s: {exc}") from exc
        if sol.status != 0:
            raise SolverFailure(f"{method} failed at t = {t0:g} s: {sol.message}")
        y_end = sol.y[:, -1]
        if not np.all(np.isfinite(y_end)):
            raise SolverFailure(f"{method} gave a non-finite state after t = {t0:g} s")
        return y_end, temp(t0 + duration)

    @staticmethod
    def _odeint(fun: Any, jac: Any, y: FloatArray, t0: float, duration: float, rtol: float,
                atol: FloatArray) -> FloatArray:
        """ODEPACK LSODA over one period (see the module docstring); ``SolverFailure`` on error."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ODEintWarning)
                ys, info = odeint(fun, y, [t0, t0 + duration], Dfun=jac, tfirst=True, rtol=rtol,
                                  atol=atol, mxstep=100_000, full_output=True)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError) as exc:
            raise SolverFailure(f"LSODA failed at t = {t0:g} s: {exc}") from exc
        if info["message"] != "Integration successful.":
            raise SolverFailure(f"LSODA failed at t = {t0:g} s: {info['message']}")
        y_end = np.asarray(ys[-1], dtype=np.float64)
        if not np.all(np.isfinite(y_end)):
            raise SolverFailure(f"LSODA gave a non-finite state after t = {t0:g} s")
        return y_end


@dataclass(frozen=True)
class OpenLoopResult:
    """Outputs of :func:`simulate_open_loop` on the 10-min grid (``k + 1`` samples).

    Attributes
    ----------
    t:
        Time [s].
    moments:
        ``(k + 1, 5)``: ``mu_0 .. mu_4`` [m^j/kg slurry] (``L`` in metres).
    concentration:
        Dissolved dextrose ``c`` [kg/kg slurry].
    temperature:
        Slurry temperature ``T`` [C].
    mean_size:
        ``mu_4 / mu_3`` [um].
    jacket:
        The jacket profile applied over each interval [C] (length ``k``).
    distribution:
        ``(k + 1, n_cells)`` number density ``F`` [#/(kg um)] at the cell centres.
    sizes:
        Cell centres [um].
    total_dextrose:
        ``c + k_v rho_c mu_3`` [kg/kg] (constant up to round-off).
    top_mass_fraction:
        Fraction of crystal mass in the last cell (crystals that reached ``l_max``).
    """

    t: FloatArray
    moments: FloatArray
    concentration: FloatArray
    temperature: FloatArray
    mean_size: FloatArray
    jacket: FloatArray
    distribution: FloatArray
    sizes: FloatArray
    total_dextrose: FloatArray
    top_mass_fraction: FloatArray


def simulate_open_loop(
    params: CrystalParams | None = None,
    *,
    seed_mean: float,
    seed_sd: float,
    seed_mass_fraction: float,
    c0: float,
    temp0: float,
    jacket_profile: ArrayLike,
    grid: SizeGrid | None = None,
    dt: float = CONTROL_PERIOD,
    rtol: float = 1e-6,
    method: str = "BDF",
) -> OpenLoopResult:
    """Simulate the finite-volume PBE plant under a piecewise-constant jacket profile.

    This is the reference other simulators are compared against.

    Parameters
    ----------
    params:
        Kinetic and physical parameters (default: MODELS.md values).
    seed_mean, seed_sd:
        Mean and standard deviation of the normal seed size distribution [um].
    seed_mass_fraction:
        Seed crystal mass per kg slurry [kg/kg] (MODELS.md: 0.05-0.25), i.e. ``M_T(0)``.
    c0:
        Initial dissolved dextrose [kg/kg slurry] (MODELS.md: 0.60-0.85).
    temp0:
        Initial slurry temperature [C].
    jacket_profile:
        Jacket temperature [C] over each interval ``[k dt, (k+1) dt)``; 144 values for 24 h at
        the 10-min grid (MODELS.md's hourly profiles repeat each value six times).
    grid:
        Size grid (default 250 cells on 1-500 um).
    dt:
        Interval of the profile and of the outputs [s].
    rtol:
        Relative tolerance of the integrator.
    method:
        ``"BDF"`` (sparse analytic Jacobian) or ``"LSODA"`` (dense analytic Jacobian).

    Returns
    -------
    OpenLoopResult
        Time, moments, concentration, temperature and mean size at every interval boundary.

    Raises
    ------
    SolverFailure
        When the integrator fails.
    """
    profile = np.asarray(jacket_profile, dtype=float).reshape(-1)
    if profile.size == 0 or not np.all(np.isfinite(profile)):
        raise ValueError(f"jacket_profile must be a non-empty finite sequence, got {profile}")
    if method not in ("BDF", "LSODA"):
        raise ValueError(f"method must be 'BDF' or 'LSODA', got {method!r}")
    pbe = PopulationBalance(params, grid)
    y, f_scale = pbe.initial_state(seed_mean, seed_sd, seed_mass_fraction, c0)
    temp = float(temp0)
    ys, temps = [y], [temp]
    for k, jacket in enumerate(profile):
        y, temp = pbe.advance(y, f_scale, k * dt, temp, float(jacket), dt, rtol=rtol,
                              method=method)
        ys.append(y)
        temps.append(temp)
    traj = np.stack(ys)
    mom = pbe.moments(traj, f_scale)
    crystal = pbe.params.k_v * pbe.params.rho_c * mom[:, 3]
    top = traj[:, pbe.n - 1] * pbe._x3[-1] / np.maximum(traj[:, : pbe.n] @ pbe._x3, 1e-300)
    return OpenLoopResult(
        t=np.arange(profile.size + 1, dtype=np.float64) * dt,
        moments=mom,
        concentration=traj[:, pbe.n].copy(),
        temperature=np.asarray(temps),
        mean_size=mom[:, 4] / mom[:, 3] * 1e6,
        jacket=profile.copy(),
        distribution=traj[:, : pbe.n] * f_scale,
        sizes=pbe.x.copy(),
        total_dextrose=traj[:, pbe.n] + crystal,
        top_mass_fraction=top,
    )
