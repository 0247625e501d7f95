"""PI for the dextrose crystallizer, tuned by the SIMC rules on one grade's step response.

The rule (Skogestad, "Simple analytic rules for model reduction and PID controller tuning",
J. Process Control 13, 2003):

1. **Identify** a first-order-plus-dead-time (FOPDT) response ``K e^{-theta s} / (tau s + 1)``
   of the mean size [um] to the jacket temperature [C] on the tuning grade ``"medium"`` of
   ``ctrlbench/Crystallization-v0`` (nominal kinetics and seed, 140 um set-point): two open-loop
   PBE batches (:func:`plants.crystallization.model.simulate_open_loop`), one at a constant
   25 C jacket (which ends at 139.7 um, next to the set-point) and one stepped to 20 C after
   2 h; the difference of the two mean-size trajectories is fitted by least squares
   (:func:`identify_step_response`). The result is stored in :data:`FOPDT_MEDIUM` and a slow
   test re-identifies it.
2. **Tune** with SIMC: ``K_c = tau / (K (tau_c + theta))``, ``T_i = min(tau, 4 (tau_c +
   theta))``, with the tight default ``tau_c = theta`` (:func:`simc_pi`). ``K < 0`` (a colder
   jacket grows the crystals more), so the controller is reverse acting.

The controller (:class:`CrystalPI`) is :class:`controllers.pid.PID` on ``e = mean_size_ref -
mean_size`` with back-calculation anti-windup. It starts bumplessly at the jacket temperature the
plant reports as applied (observation ``T_j_applied``; the measured slurry temperature, the jacket's
starting value, when the plant does not observe it) and keeps its output inside the plant's
jacket bounds and, when the plant declares one (its ``action_rate_limit`` attribute, C per step),
inside the rate limit, so the anti-windup sees every limit the plant applies. The gains are the
same on every grade: the study shows what that costs on the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from controllers.pid import PID
from controllers.pid_design import PIGains
from ctrlbench.controller import FeedbackController
from ctrlbench.model import PlantModel
from ctrlbench.options import Options, option
from ctrlbench.plant import plant_dt, signals_of
from ctrlbench.signals import SignalSpec, index_of, reference_index

__all__ = [
    "FOPDT_MEDIUM",
    "CrystalPI",
    "CrystalPIOptions",
    "Fopdt",
    "design_crystallization_pi",
    "identify_step_response",
    "simc_pi",
]


@dataclass(frozen=True)
class Fopdt:
    """First-order-plus-dead-time model ``gain e^{-theta s} / (tau s + 1)``.

    Attributes
    ----------
    gain:
        Static gain [um/C].
    tau:
        Time constant [s].
    theta:
        Dead time [s].
    """

    gain: float
    tau: float
    theta: float


FOPDT_MEDIUM = Fopdt(gain=-0.9135, tau=11790.0, theta=2047.0)
"""FOPDT of mean size to jacket temperature on grade ``"medium"`` (identified by
:func:`identify_step_response` with its defaults; rounded)."""


@dataclass(frozen=True)
class CrystalPIOptions(Options):
    """Design settings of the crystallizer PI (SIMC on :data:`FOPDT_MEDIUM`)."""

    label = "controller 'pid' (Crystallization)"
    tau_c: float | None = option(
        None, "SIMC closed-loop time constant [s]; None = the dead time theta (tight control)",
        ge=60.0, le=86400.0)
    bias: float | None = option(
        None, "initial jacket temperature [C]; None = the applied jacket temperature the plant "
        "observes (else the first measured slurry temperature)",
        ge=5.0, le=40.0)


def simc_pi(model: Fopdt, tau_c: float | None = None) -> PIGains:
    """SIMC PI gains for an FOPDT model.

    Parameters
    ----------
    model:
        The identified response.
    tau_c:
        Closed-loop time constant [s]; ``None`` uses ``model.theta``.

    Returns
    -------
    PIGains
        ``kp = tau / (K (tau_c + theta))`` [C/um], ``ki = kp / min(tau, 4 (tau_c + theta))``
        [C/(um s)], ``t_equiv = tau_c + theta``.
    """
    tc = model.theta if tau_c is None else tau_c
    if not (model.gain != 0 and math.isfinite(model.gain) and model.tau > 0 and tc > 0
            and model.theta >= 0):
        raise ValueError(f"SIMC needs gain != 0, tau > 0, tau_c > 0, theta >= 0; got {model}, "
                         f"tau_c={tc}")
    kp = model.tau / (model.gain * (tc + model.theta))
    ti = min(model.tau, 4.0 * (tc + model.theta))
    return PIGains(kp=kp, ki=kp / ti, t_equiv=tc + model.theta)


def identify_step_response(grade: str = "medium", base: float = 25.0, step: float = -5.0,
                           t_step: float = 7200.0, n_cells: int = 250) -> Fopdt:
    """Fit an FOPDT to the mean-size response to a jacket step on a named grade (PBE plant).

    Parameters
    ----------
    grade:
        A name in :data:`plants.crystallization.references.GRADES` (its conditions are used).
    base:
        Constant jacket temperature of the reference batch [C].
    step:
        Jacket step [C] applied at ``t_step`` in the second batch.
    t_step:
        Time of the step [s] (a multiple of the 600 s control period).
    n_cells:
        Cells of the size grid.

    Returns
    -------
    Fopdt
        Least-squares fit of ``K step (1 - exp(-(t - t_step - theta) / tau))`` to the difference
        of the two batches' mean sizes.
    """
    from scipy.optimize import least_squares

    from plants.crystallization.model import SizeGrid, simulate_open_loop
    from plants.crystallization.references import GRADES

    cond = GRADES[grade].conditions
    k_step = round(t_step / 600.0)
    runs = []
    for delta in (0.0, step):
        profile = np.full(144, float(base))
        profile[k_step:] += delta
        runs.append(simulate_open_loop(
            seed_mean=cond.seed_mean, seed_sd=cond.seed_sd,
            seed_mass_fraction=cond.seed_mass_fraction, c0=cond.c0, temp0=cond.temp0,
            jacket_profile=profile, grid=SizeGrid(n_cells=n_cells)))
    t = runs[0].t[k_step:] - runs[0].t[k_step]
    dy = (runs[1].mean_size - runs[0].mean_size)[k_step:]

    def residual(q: NDArray[np.float64]) -> NDArray[np.float64]:
        gain, tau, theta = q
        resp = gain * step * (1.0 - np.exp(-np.maximum(t - theta, 0.0) / tau))
        return np.asarray(resp - dy, dtype=np.float64)

    fit = least_squares(residual, x0=[dy[-1] / step, 3600.0, 600.0],
                        bounds=([-np.inf, 60.0, 0.0], [np.inf, 1e6, 2e4]))
    gain, tau, theta = (float(v) for v in fit.x)
    return Fopdt(gain=gain, tau=tau, theta=theta)


class CrystalPI(FeedbackController):
    """PI on the mean-size error with bumpless start and jacket bounds and rate limit.

    Parameters
    ----------
    dt:
        Control period [s].
    measured, reference, temperature:
        Observation positions of ``mean_size``, its set-point and the signal the output starts
        from (the applied jacket temperature, or the slurry temperature).
    gains:
        PI gains (``kp`` [C/um], ``ki`` [C/(um s)]).
    u_low, u_high:
        Jacket bounds [C].
    max_step:
        Largest output change per period [C] (``inf``: no rate limit).
    bias:
        Initial output [C]; ``None`` starts at the first observed ``temperature``.
    """

    def __init__(self, dt: float, measured: int, reference: int, temperature: int,
                 gains: PIGains, u_low: float, u_high: float, max_step: float = math.inf,
                 bias: float | None = None) -> None:
        super().__init__(dt)
        self.measured, self.reference, self.temperature = measured, reference, temperature
        self.gains = gains
        self.u_low, self.u_high, self.max_step, self.bias = u_low, u_high, max_step, bias
        self.pid = PID(gains.kp, gains.ki, dt=dt, u_min=u_low, u_max=u_high)
        self._u: float | None = None

    def reset(self) -> None:
        """Forget the last output (the next step starts bumplessly again)."""
        self._u = None

    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """One PI step: jacket temperature [C]."""
        y, r = float(observation[self.measured]), float(observation[self.reference])
        error = r - y
        if self._u is None:
            start = float(observation[self.temperature]) if self.bias is None else self.bias
            start = min(max(start, self.u_low), self.u_high)
            self.pid.u_min, self.pid.u_max = np.asarray(self.u_low), np.asarray(self.u_high)
            self.pid.reset(u0=start, error=error)
            self._u = start
        # the rate limit as moving output limits, so the anti-windup sees it
        self.pid.u_min = np.asarray(max(self.u_low, self._u - self.max_step))
        self.pid.u_max = np.asarray(min(self.u_high, self._u + self.max_step))
        self._u = float(self.pid.update(error))
        return np.array([self._u])


def design_crystallization_pi(plant: Any, model: PlantModel, options: CrystalPIOptions
                              ) -> CrystalPI:
    """SIMC PI from :data:`FOPDT_MEDIUM` for ``ctrlbench/Crystallization-v0`` (``"pid"``).

    Parameters
    ----------
    plant:
        The plant (possibly wrapped); observes ``mean_size``, its reference and ``T``.
    model:
        Its moments model (not used: the gains come from the identified :data:`FOPDT_MEDIUM`).
    options:
        :class:`CrystalPIOptions`.
    """
    obs, act = signals_of(plant)
    dt = plant_dt(plant)
    gains = simc_pi(FOPDT_MEDIUM, options.tau_c)
    try:
        rate = plant.get_wrapper_attr("action_rate_limit")
    except AttributeError:
        rate = None
    max_step = math.inf if rate is None else float(np.min(rate))
    return CrystalPI(dt, index_of(obs, "mean_size"), reference_index(obs, "mean_size"),
                     _start_index(obs), gains, float(act[0].low), float(act[0].high),
                     max_step=max_step, bias=options.bias)


def _start_index(obs: tuple[SignalSpec, ...]) -> int:
    """Where the bumpless start reads: ``T_j_applied`` if the plant observes it, else ``T``."""
    measured = [s.name if s.tracks is None else "" for s in obs]
    return measured.index("T_j_applied") if "T_j_applied" in measured else index_of(obs, "T")
