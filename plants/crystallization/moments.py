"""Method-of-moments model of the dextrose crystallizer: the plant's ``model()`` (numpy/casadi).

With size-independent growth the moments of the population balance close exactly:

``d mu_0/dt = B``, ``d mu_j/dt = j G mu_{j-1} + B L_min^j`` (``j = 1..4``),
``dc/dt = -k_v rho_c (3 G mu_2 + B L_min^3)``, ``dT/dt = U A (T_j - T) / (m C_p)``,

with ``G``, ``B``, ``S`` and ``c_sat`` from :mod:`plants.crystallization.model`. ``mu_4`` is
carried because the controlled output, the mean size ``mu_4 / mu_3``, needs it. Total dextrose
``c + k_v rho_c mu_3`` is conserved exactly. The finite-volume PBE is the plant; this model is
what model-based controllers (MPC) use, so plant and model differ by the discretisation and by
any kinetic uncertainty of the plant.

Scaled moments (states and observations): ``mu_j* = mu_j / (N_REF L_REF^j)`` with
``N_REF = 1e9`` crystals per kg slurry and ``L_REF = 100 um``; so ``M_T = 0.806 mu_3*`` kg/kg and
the mean size is ``100 um * mu_4* / mu_3*``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import solve_ivp

from ctrlbench.model import Ops, PlantModel
from ctrlbench.signals import SignalSpec
from plants.crystallization.model import (
    MATH_OPS,
    CrystalParams,
    growth_rate,
    nucleation_rate,
    solubility,
)

__all__ = [
    "CRYSTAL_MODEL_NAME",
    "INPUTS",
    "L_REF",
    "MEAN_SIZE",
    "N_REF",
    "STATES",
    "crystallization_model",
    "mean_size",
    "moments_rhs",
    "scale_moments",
    "simulate_moments",
]

CRYSTAL_MODEL_NAME = "dextrose_crystallization"
"""``model().name`` of ``ctrlbench/Crystallization-v0`` (keys its PID design)."""

N_REF = 1e9
"""Number scale of the scaled moments [#/kg slurry]."""
L_REF = 1e-4
"""Length scale of the scaled moments [m] (100 um)."""

STATES = (
    SignalSpec("mu0", "1e9/kg", 0.0, 1e4, "crystal number per kg slurry, mu_0 / N_REF"),
    SignalSpec("mu1", "1e9*(100um)/kg", 0.0, 1e4, "first moment, mu_1 / (N_REF L_REF)"),
    SignalSpec("mu2", "1e9*(100um)^2/kg", 0.0, 1e4, "second moment, mu_2 / (N_REF L_REF^2)"),
    SignalSpec("mu3", "1e9*(100um)^3/kg", 0.0, 10.0,
               "third moment, mu_3 / (N_REF L_REF^3); crystal mass M_T = 0.806 mu3"),
    SignalSpec("mu4", "1e9*(100um)^4/kg", 0.0, 100.0, "fourth moment, mu_4 / (N_REF L_REF^4)"),
    SignalSpec("c", "kg/kg", 0.0, 1.5, "dissolved dextrose per kg slurry"),
    SignalSpec("T", "degC", 0.0, 60.0, "slurry temperature"),
)
INPUTS = (SignalSpec("T_j", "degC", 5.0, 40.0, "jacket temperature"),)
MEAN_SIZE = SignalSpec("mean_size", "um", 0.0, 500.0, "mean crystal size mu_4 / mu_3")


def _params(params: CrystalParams, l_min: float) -> dict[str, float]:
    p = params.as_dict()
    p.update(heat_rate=params.heat_rate, n_ref=N_REF, l_ref=L_REF, l0=l_min * 1e-6 / L_REF,
             mass_scale=params.k_v * params.rho_c * N_REF * L_REF**3)
    return p


def moments_rhs(x: Any, u: Any, p: Any, ops: Ops) -> list[Any]:
    """``dx/dt`` [1/s] of the scaled moments model (``x = [mu0..mu4, c, T]``, ``u = [T_j]``)."""
    temp, c = x[6], x[5]
    s = c / solubility(temp, p)
    g = growth_rate(s, temp, p, ops) / p["l_ref"]
    b = nucleation_rate(s, p["mass_scale"] * x[3], p, ops) / p["n_ref"]
    l0 = p["l0"]
    return [
        b,
        g * x[0] + b * l0,
        2.0 * g * x[1] + b * l0**2,
        3.0 * g * x[2] + b * l0**3,
        4.0 * g * x[3] + b * l0**4,
        -p["mass_scale"] * (3.0 * g * x[2] + b * l0**3),
        p["heat_rate"] * (u[0] - temp),
    ]


def _output(x: Any, u: Any, p: Any, ops: Ops) -> list[Any]:
    return [1e6 * p["l_ref"] * x[4] / ops.fmax(x[3], 1e-12)]


def crystallization_model(params: CrystalParams | None = None, l_min: float = 1.0
                          ) -> PlantModel:
    """The moments :class:`~ctrlbench.model.PlantModel`: states ``mu0..mu4, c, T``, input
    ``T_j`` [C], output ``mean_size`` [um]; no operating point (a batch has none).

    Parameters
    ----------
    params:
        Physical parameters (nominal by default: model-based controllers do not know a
        plant's kinetic uncertainty).
    l_min:
        Nucleation size [um].
    """
    params = params or CrystalParams()
    meta: dict[str, Any] = {"source": "MODELS.md section 3 (Sitapure & Kwon 2023, CrystalGPT)",
                            "time_unit": "s", "moments": "mu_j / (1e9 (100 um)^j) per kg slurry"}
    return PlantModel(
        name=CRYSTAL_MODEL_NAME,
        states=STATES,
        inputs=INPUTS,
        outputs=(MEAN_SIZE,),
        params=_params(params, l_min),
        dynamics=moments_rhs,
        output=_output,
        meta=meta,
    )


def scale_moments(mu: ArrayLike) -> NDArray[np.float64]:
    """SI moments ``mu_0..mu_4`` [m^j/kg] (last axis) to the scaled ones of the model."""
    arr = np.asarray(mu, dtype=float)
    return arr / (N_REF * L_REF ** np.arange(arr.shape[-1]))


def mean_size(x: ArrayLike) -> float:
    """Mean size ``mu_4 / mu_3`` [um] of a scaled moments state."""
    xa = np.asarray(x, dtype=float)
    return float(1e6 * L_REF * xa[4] / max(xa[3], 1e-12))


def simulate_moments(params: CrystalParams, x0: ArrayLike, jacket_profile: ArrayLike,
                     dt: float = 600.0, l_min: float = 1.0, rtol: float = 1e-7
                     ) -> NDArray[np.float64]:
    """Integrate the moments model under a piecewise-constant jacket profile (LSODA).

    Parameters
    ----------
    params:
        Physical parameters.
    x0:
        Initial scaled state ``[mu0..mu4, c, T]``.
    jacket_profile:
        Jacket temperature [C] per interval of ``dt`` seconds.
    dt:
        Interval [s].
    l_min:
        Nucleation size [um].
    rtol:
        Relative tolerance.

    Returns
    -------
    numpy.ndarray
        ``(len(profile) + 1, 7)`` states at the interval boundaries.
    """
    p = _params(params, l_min)
    xs = [np.asarray(x0, dtype=float)]
    atol = np.array([1e-9, 1e-9, 1e-9, 1e-9, 1e-9, 1e-10, 1e-7])
    profile = np.asarray(jacket_profile, dtype=float).reshape(-1)
    k = 0
    while k < profile.size:  # merge equal consecutive values into one integration
        j = k
        while j + 1 < profile.size and profile[j + 1] == profile[k]:
            j += 1
        u = (float(profile[k]),)
        t_eval = np.arange(1, j - k + 2) * dt
        sol = solve_ivp(lambda t, x, u=u: moments_rhs(x, u, p, MATH_OPS), (0.0, t_eval[-1]),
                        xs[-1], method="LSODA", rtol=rtol, atol=atol, t_eval=t_eval)
        if sol.status != 0 or not np.all(np.isfinite(sol.y)):
            raise RuntimeError(f"moments model integration failed: {sol.message}")
        xs.extend(sol.y.T)
        k = j + 1
    return np.stack(xs)


