"""Discrete LQR with integral action on a plant's linearized ``model()`` (registry name ``"lqr"``).

Design (at the model's declared operating point ``(x_op, u_op)``; the controller requires one, so
a plant whose model declares none is refused instead of being linearized at zero. The motor
models declare zero, which is exact for them: they are affine in ``x`` and ``u``):

1. ``A, B`` from :meth:`PlantModel.linearize`, affine term ``c = f(x0, u0)``; zero-order-hold
   discretisation ``(Ad, Bd)`` at the plant's ``dt`` (matrix exponential).
2. Tracked states ``C x``: the model states that a reference signal of the plant ``tracks``.
   Integral state ``z[k+1] = z[k] + dt (r - C x)``; augmented DARE with
   ``Q = diag(q_x / x_max², q_z / (x_max T_i)²)``, ``R = r_u / u_max²`` (Bryson scaling,
   ``T_i = 10 dt`` unless given), solved by :func:`scipy.linalg.solve_discrete_are`.
3. Steady-state target ``(x_s, u_s)`` from ``A x_s + B u_s + c = 0``, ``C x_s = r`` (least squares),
   so the integrator only removes model error: ``u = u_s - K_x (x - x_s) + K_z z``, clipped to the
   action bounds; the integrator holds while the output saturates (conditional integration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import expm, solve_discrete_are

from ctrlbench.controller import FeedbackController
from ctrlbench.model import PlantModel
from ctrlbench.options import Options, option
from ctrlbench.plant import plant_dt, signals_of
from ctrlbench.signals import index_of

__all__ = ["LQRIntegral", "LQROptions", "discretize_zoh", "make_lqr"]

FloatArray = NDArray[np.float64]


def discretize_zoh(a: FloatArray, b: FloatArray, dt: float) -> tuple[FloatArray, FloatArray]:
    """Zero-order-hold discretisation ``(Ad, Bd)`` of ``dx/dt = A x + B u`` with period ``dt``."""
    nx, nu = b.shape
    m = np.zeros((nx + nu, nx + nu))
    m[:nx, :nx], m[:nx, nx:] = a, b
    e = expm(m * dt)
    return e[:nx, :nx], e[:nx, nx:]


class LQRIntegral(FeedbackController):
    """State-feedback LQR with integral action and steady-state feed-forward.

    Parameters
    ----------
    dt:
        Control period (s).
    model:
        Plant model; its states must appear in the observation by name.
    state_index:
        Observation positions of the model states.
    reference_index:
        Observation positions of the references.
    tracked:
        Model-state positions tracked by those references (same order).
    u_low, u_high:
        Action bounds.
    q_state, q_integral, r_input:
        Weights on (Bryson-scaled) state deviation, integral and input.
    t_integral:
        Integral-action time scale used in the scaling (s); ``None`` is ``10 dt``.
    state_weights:
        Per-state multipliers of ``q_state`` (model state order); ``None`` is all ones.
    reference_tau:
        Time constant of a first-order set-point prefilter (s), started at the measured value;
        0 disables it.
    """

    def __init__(
        self,
        dt: float,
        model: PlantModel,
        state_index: tuple[int, ...],
        reference_index: tuple[int, ...],
        tracked: tuple[int, ...],
        u_low: FloatArray,
        u_high: FloatArray,
        q_state: float = 100.0,
        q_integral: float = 1.0,
        r_input: float = 1.0,
        t_integral: float | None = None,
        state_weights: tuple[float, ...] | None = None,
        reference_tau: float = 0.0,
    ) -> None:
        super().__init__(dt)
        nx, nu, ny = model.nx, model.nu, len(tracked)
        x0, u0 = model.operating_point()
        a, b, _, _ = model.linearize(x0, u0)
        c_aff = model.f(x0, u0)
        ad, bd = discretize_zoh(a, b, dt)
        c = np.zeros((ny, nx))
        c[np.arange(ny), list(tracked)] = 1.0
        # augmented system: [x; z], z[k+1] = z[k] + dt (r - C x)
        aa = np.block([[ad, np.zeros((nx, ny))], [-dt * c, np.eye(ny)]])
        ba = np.vstack([bd, np.zeros((ny, nu))])
        x_max = np.array([max(abs(s.low), abs(s.high)) for s in model.states])
        x_max = np.where(np.isfinite(x_max), x_max, 1.0)
        u_max = np.maximum(np.abs(u_low), np.abs(u_high))
        t_i = 10.0 * dt if t_integral is None else t_integral
        if not t_i > 0 or not r_input > 0 or q_state < 0 or q_integral < 0:
            raise ValueError(
                f"need t_integral > 0, r_input > 0, q_state >= 0, q_integral >= 0; got "
                f"{t_i}, {r_input}, {q_state}, {q_integral}"
            )
        w = np.ones(nx) if state_weights is None else np.asarray(state_weights, dtype=float)
        if w.shape != (nx,) or np.any(w < 0):
            raise ValueError(f"state_weights needs {nx} non-negative entries, got {state_weights}")
        q = np.diag(
            np.concatenate(
                [q_state * w / x_max**2, q_integral / (x_max[list(tracked)] * t_i) ** 2]
            )
        )
        r = np.diag(r_input / u_max**2)
        p = solve_discrete_are(aa, ba, q, r)
        k = np.linalg.solve(r + ba.T @ p @ ba, ba.T @ p @ aa)
        self.k_x, self.k_z = k[:, :nx], -k[:, nx:]
        self.closed_loop_poles = np.linalg.eigvals(aa - ba @ k)
        # steady state: [A B; C 0] [x_s; u_s] = [-c; r]
        m = np.block([[a, b], [c, np.zeros((ny, nu))]])
        self._ss = np.linalg.pinv(m)
        self._c_aff = c_aff
        self._nx = nx
        self._sidx = np.asarray(state_index)
        self._ridx = np.asarray(reference_index)
        self._tracked = np.asarray(tracked)
        self._u_low, self._u_high = np.asarray(u_low, float), np.asarray(u_high, float)
        self.z = np.zeros(ny)
        if reference_tau < 0:
            raise ValueError(f"reference_tau must be >= 0, got {reference_tau}")
        self._alpha = dt / (reference_tau + dt)
        self._r_f: FloatArray | None = None

    def reset(self) -> None:
        """Zero the integral state and the prefilter."""
        self.z = np.zeros_like(self.z)
        self._r_f = None

    def compute(self, observation: FloatArray) -> FloatArray:
        """Action from the observed model states and references."""
        x = observation[self._sidx]
        if self._r_f is None:
            self._r_f = x[self._tracked].astype(float)
        self._r_f = self._r_f + self._alpha * (observation[self._ridx] - self._r_f)
        ref = self._r_f
        target = self._ss @ np.concatenate([-self._c_aff, ref])
        x_s, u_s = target[: self._nx], target[self._nx :]
        u_raw = u_s - self.k_x @ (x - x_s) + self.k_z @ self.z
        u = np.clip(u_raw, self._u_low, self._u_high)
        if np.array_equal(u, u_raw):
            self.z = self.z + self.dt * (ref - x[self._tracked])
        return u


@dataclass(frozen=True)
class LQROptions(Options):
    """Weights of the LQR design (Bryson-scaled by each signal's bound)."""

    q_state: float = option(100.0, "weight on state deviation", ge=0, le=1e8)
    q_integral: float = option(1.0, "weight on the integral of the tracking error", ge=0, le=1e8)
    r_input: float = option(1.0, "weight on the input", ge=1e-8, le=1e8)
    t_integral: float | None = option(
        None, "time scale of the integral action [s]; None = 10 dt", ge=1e-6, le=1e3)
    state_weights: tuple[float, ...] | None = option(
        None, "per-state multipliers of q_state in model state order; None = all ones", ge=0,
        le=1e8)
    reference_tau: float = option(
        0.0, "set-point prefilter time constant [s]; 0 disables it (DCSpeed recommends 0.3)", ge=0,
        le=1e3)


def make_lqr(plant: Any, options: LQROptions) -> LQRIntegral:
    """LQR with integral action designed on ``plant.model()`` (registry name ``"lqr"``).

    LQR has no current limit: on ``DCSpeed-v0`` with GEM's random speed references use
    ``reference_tau=0.3`` (measured: 1 s episodes, seeds 0-2, peak current 108-147 A), else the
    initial reference jump trips the 210 A limit; ``DCSpeed`` recommends 0.3 through its
    ``controller_defaults``.

    Parameters
    ----------
    plant:
        A ctrlbench plant (possibly wrapped) whose model declares an operating point; the model's
        states must be observed under the same names and a reference must track one of them.
    options:
        Design weights (:class:`LQROptions`).

    Returns
    -------
    LQRIntegral
        The controller; ``closed_loop_poles`` holds the discrete closed-loop eigenvalues.
    """
    model: PlantModel = plant.get_wrapper_attr("model")()
    obs, act = signals_of(plant)
    names = [s.name for s in model.states]
    state_index = tuple(index_of(obs, n) for n in names)
    pairs = [(i, names.index(s.tracks)) for i, s in enumerate(obs) if s.tracks in names]
    if not pairs:
        raise ValueError(f"no reference of the plant tracks a model state {names}")
    return LQRIntegral(
        plant_dt(plant),
        model,
        state_index,
        tuple(i for i, _ in pairs),
        tuple(j for _, j in pairs),
        np.array([s.low for s in act]),
        np.array([s.high for s in act]),
        **options.to_dict(),
    )
