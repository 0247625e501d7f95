"""Terminal cost and steady-state targets of the ``"mpc"`` OCP, from the model's linearization.

A short horizon without a terminal cost makes a myopic controller: it cannot see that it must
brake in time (measured on ``MassSpringDamper-v0`` with a 10-step horizon and a 0.5 N/step rate
limit: ~1000 % overshoot, no settling). The textbook remedy (Rawlings, Mayne & Diehl, *Model
Predictive Control*, ch. 2) is a terminal cost that approximates the infinite-horizon cost-to-go:
here the discrete LQR value function of the linearized model, in the OCP's own (Bryson-scaled)
variables, around the steady state that puts the tracked signals on their references.

- Linearization at the model's operating point, discretised with the OCP's own RK4 map ``Phi``
  (casadi Jacobians), so it matches the prediction model.
- Augmented state ``xi = [x; u_prev]``, input ``du``: stage cost
  ``|C x|²_Q + |du|²_R`` with the OCP's tracking and move weights; ``P`` from the DARE.
- Target ``(x_s, u_s)`` for references ``r``: least-squares solution of the linearized
  ``f(x_s, u_s) = 0``, ``z(x_s, u_s) = r`` (exact for the affine motor and spring models).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import NDArray
from scipy.linalg import solve_discrete_are

from controllers.mpc_ocp import Tracked
from ctrlbench.model import PlantModel

__all__ = ["TerminalDesign", "design_terminal"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class TerminalDesign:
    """LQR terminal weight and the steady-state target map.

    Parameters
    ----------
    p:
        Terminal weight on ``[(x_N - x_s) / x_scale; (u_(N-1) - u_s) / u_scale]``.
    x0, u0:
        Linearization point.
    target_map:
        ``[x_s - x0; u_s - u0] = target_map @ [-f(x0, u0); r - z(x0, u0)]``.
    f0, z0:
        ``f(x0, u0)`` and the tracked signals at the linearization point.
    """

    p: FloatArray
    x0: FloatArray
    u0: FloatArray
    target_map: FloatArray
    f0: FloatArray
    z0: FloatArray

    def target(self, ref: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Steady state ``(x_s, u_s)`` whose tracked signals equal ``ref`` (linearized)."""
        d = self.target_map @ np.concatenate([-self.f0, np.asarray(ref, float) - self.z0])
        nx = self.x0.size
        return self.x0 + d[:nx], self.u0 + d[nx:]


def _tracked_rows(model: PlantModel, tracked: Sequence[Tracked], x0: FloatArray,
                  u0: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(C, D, z0)``: Jacobians and values of the tracked signals at ``(x0, u0)``."""
    _, _, c_out, d_out = model.linearize(x0, u0)
    y0 = model.h(x0, u0)
    c = np.zeros((len(tracked), model.nx))
    d = np.zeros((len(tracked), model.nu))
    z0 = np.zeros(len(tracked))
    for i, t in enumerate(tracked):
        if t.kind == "state":
            c[i, t.index], z0[i] = 1.0, x0[t.index]
        else:
            c[i], d[i], z0[i] = c_out[t.index], d_out[t.index], y0[t.index]
    return c, d, z0


def design_terminal(model: PlantModel, phi: Any, tracked: Sequence[Tracked],
                    x_scale: FloatArray, u_scale: FloatArray, q: FloatArray, m: FloatArray,
                    x0: FloatArray, u0: FloatArray) -> TerminalDesign:
    """The LQR terminal weight at ``(x0, u0)`` for tracking weights ``q`` and move weights ``m``.

    Parameters
    ----------
    model:
        The plant model.
    phi:
        The OCP's one-interval map ``Phi(x, u)`` (a casadi ``Function``).
    tracked:
        The tracked signals (their ``scale`` enters the weights as in the OCP).
    x_scale, u_scale:
        The OCP's variable scales.
    q, m:
        Tracking weights per reference, move weights per input.
    x0, u0:
        Linearization point.

    Raises
    ------
    ValueError
        When the Riccati equation has no stabilizing solution (the tracked signals do not see
        an unstable mode, or the linearization is not finite).
    """
    nx, nu = model.nx, model.nu
    x0, u0 = np.asarray(x0, float), np.asarray(u0, float)
    xs, us = ca.SX.sym("x", nx), ca.SX.sym("u", nu)
    jac = ca.Function("phi_jacobian", [xs, us], [ca.jacobian(phi(xs, us), xs),
                                        ca.jacobian(phi(xs, us), us)])
    ad, bd = (np.asarray(j, float) for j in jac(x0, u0))
    c, d, z0 = _tracked_rows(model, tracked, x0, u0)
    if not (np.all(np.isfinite(ad)) and np.all(np.isfinite(bd)) and np.all(np.isfinite(c))):
        raise ValueError(f"model {model.name!r}: non-finite linearization at x={x0}, u={u0}")
    sx, su = np.diag(x_scale), np.diag(u_scale)
    sx_inv = np.diag(1.0 / np.asarray(x_scale, float))
    t_inv = np.diag([1.0 / t.scale for t in tracked])
    a_s, b_s, c_s = sx_inv @ ad @ sx, sx_inv @ bd @ su, t_inv @ c @ sx
    # augmented: xi = [x; u_prev], v = du:  xi+ = [A x + B u_prev + B v; u_prev + v]
    aa = np.block([[a_s, b_s], [np.zeros((nu, nx)), np.eye(nu)]])
    ba = np.vstack([b_s, np.eye(nu)])
    qa = np.zeros((nx + nu, nx + nu))
    qa[:nx, :nx] = c_s.T @ np.diag(q) @ c_s
    ra = np.diag(np.maximum(np.asarray(m, float), 1e-8))
    try:
        p = solve_discrete_are(aa, ba, qa, ra)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise ValueError(f"model {model.name!r}: no LQR terminal cost ({exc})") from None
    if not np.all(np.isfinite(p)):
        raise ValueError(f"model {model.name!r}: the LQR terminal cost is not finite")
    a_c, b_c, _, _ = model.linearize(x0, u0)
    ss = np.block([[a_c, b_c], [c, d]])
    return TerminalDesign(0.5 * (p + p.T), x0, u0, np.linalg.pinv(ss), model.f(x0, u0), z0)
