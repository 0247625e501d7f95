"""Model-designed PI controllers for the motor plants (designs of the ``"pid"`` controller).

Registered in :data:`controllers.pid_design.PID_DESIGNS` under the motor model names
(``controllers.register``). Measured with GEM 3.0.3 (``studies/motor_pi_vs_gem.py``,
``tests/controllers/test_motor_controllers.py``):

- PMSM dq current loop (``ctrlbench/PMSMCurrent-v0``, reference="step", 0 -> (-50, 100) A at
  1 ms): see :class:`PMSMCurrentPI`.
- DC speed loop (``ctrlbench/DCSpeed-v0``, reference="step", 0 -> 100 rad/s at 1 ms): see
  :class:`DCSpeedCascadePI`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from controllers.pid import PID
from controllers.pid_design import rl_technical_optimum, symmetrical_optimum
from ctrlbench.controller import FeedbackController
from ctrlbench.model import PlantModel
from ctrlbench.options import Options, option
from ctrlbench.plant import plant_dt, signals_of
from ctrlbench.signals import index_of, reference_index

__all__ = [
    "DCSpeedCascadePI",
    "DCSpeedPIOptions",
    "PMSMCurrentPI",
    "PMSMCurrentPIOptions",
    "design_dc_speed",
    "design_pmsm_current",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PMSMCurrentPIOptions(Options):
    """Design settings of the PMSM dq current PI (technical optimum)."""

    t_sigma: float | None = option(
        None, "sum of small time constants of the current loop [s]; None = the plant's dt", gt=0,
        le=1.0)
    kp_scale: float = option(1.0, "factor on the designed proportional gains (both axes)",
                             gt=0, le=100.0)
    ki_scale: float = option(1.0, "factor on the designed integral gains (both axes)",
                             gt=0, le=100.0)


@dataclass(frozen=True)
class DCSpeedPIOptions(Options):
    """Design settings of the DC motor's cascaded speed/current PI."""

    t_sigma: float | None = option(
        None, "sum of small time constants of the current loop [s]; None = the plant's dt", gt=0,
        le=1.0)
    a: float = option(4.0, "symmetrical-optimum parameter of the speed loop (> 1)", gt=1, le=100)
    current_limit: float | None = option(
        None, "current-reference limit of the speed loop [A]; None = 90 % of the model's", gt=0,
        le=1e4)
    prefilter: bool = option(True, "first-order set-point prefilter on the speed loop")


class PMSMCurrentPI(FeedbackController):
    """dq current PI by the technical optimum with decoupling and EMF feed-forward.

    Per axis ``K_p = L / (2 T_sigma)``, ``K_i = R_s / (2 T_sigma)`` (V/A), outputs divided by the
    plant's voltage scale ``2/3 u_sup``; feed-forward ``u_d += -omega_el L_q i_q``,
    ``u_q += omega_el (L_d i_d + psi_p)`` with the measured currents and speed. Anti-windup by
    back-calculation on the [-1, 1] command limits.

    Measured on ``PMSMCurrent-v0`` at 100 rad/s (step 0 -> (-50, 100) A at 1 ms, T_sigma = dt; the
    q voltage saturates for ~0.5 ms): i_sd overshoot 0.4 %, i_sq 0.02 %; both within 2 % of the
    step 0.9 ms after it; 10-90 % rise 0.6 ms (test bounds: overshoot < 10 %, settling < 3 ms).
    On GEM's default Wiener references (1 s, seeds 0/1/2) its IAE is 0.82/0.78/0.75 times that of
    gym-electric-motor's own cascaded PI (``studies/motor_pi_vs_gem.py``).

    Parameters
    ----------
    dt:
        Control period (s).
    model:
        The plant's ``pmsm_dq`` model (parameters are read from ``model.params``).
    obs_index:
        Observation positions of ``i_sd, i_sq, i_sd_ref, i_sq_ref, omega``.
    t_sigma:
        Small time constant of the loop (s).
    kp_scale, ki_scale:
        Factors on the designed ``K_p`` and ``K_i`` (1 = the technical optimum); what
        ``ctrlbench tune`` searches when the two gains are tuned apart (``studies/motor_tune.py``).
    """

    def __init__(
        self, dt: float, model: PlantModel, obs_index: tuple[int, ...], t_sigma: float,
        kp_scale: float = 1.0, ki_scale: float = 1.0,
    ) -> None:
        super().__init__(dt)
        p = model.params
        scale = 2.0 / 3.0 * p["u_sup"]
        g_d = rl_technical_optimum(p["r_s"], p["l_d"], t_sigma)
        g_q = rl_technical_optimum(p["r_s"], p["l_q"], t_sigma)
        self.pid = PID(
            kp_scale * np.array([g_d.kp, g_q.kp]) / scale,
            ki_scale * np.array([g_d.ki, g_q.ki]) / scale,
            dt=dt,
            u_min=-1.0,
            u_max=1.0,
        )
        self._idx = np.asarray(obs_index[:2])
        self._ref = np.asarray(obs_index[2:4])
        self._omega = obs_index[4]
        pp = p["p"] / scale
        self._ff = (pp * p["l_q"], pp * p["l_d"], pp * p["psi_p"])
        self.reset()

    def reset(self) -> None:
        """Zero the integrators."""
        self.pid.reset()

    def compute(self, observation: FloatArray) -> FloatArray:
        """dq voltage commands from currents, references and speed."""
        i = observation[self._idx]
        w = observation[self._omega]
        kq, kd, kpsi = self._ff
        ff = np.array([-w * kq * i[1], w * (kd * i[0] + kpsi)])
        return np.asarray(self.pid.update(observation[self._ref] - i, feedforward=ff), dtype=float)


class DCSpeedCascadePI(FeedbackController):
    """Cascaded speed/current PI for a DC motor with EMF feed-forward.

    Current loop by the technical optimum (``K_p = L_a/(2 T_sigma)``, ``K_i = R_a/(2 T_sigma)``,
    divided by ``u_sup`` to give duty), plus ``psi_e omega / u_sup``. Speed loop by the symmetrical
    optimum on ``psi_e / (s J)`` and the closed current loop ``2 T_sigma``, its output (the current
    reference) limited to ``current_limit``, with an optional set-point prefilter of time constant
    ``a² 2 T_sigma``. Both loops use back-calculation anti-windup.

    Measured on ``DCSpeed-v0`` (step 0 -> 100 rad/s at 1 ms, a = 4, T_sigma = dt; the current
    reference sits at its 189 A limit for most of the run-up): overshoot 0.8 %, within 2 % of the
    step 79 ms after it, 10-90 % rise 64 ms (test bounds: overshoot < 10 %, settling < 150 ms).

    Parameters
    ----------
    dt:
        Control period (s).
    model:
        The plant's ``dc_motor`` model.
    obs_index:
        Observation positions of ``omega, i, omega_ref``.
    options:
        Design settings.
    """

    def __init__(
        self, dt: float, model: PlantModel, obs_index: tuple[int, ...], options: DCSpeedPIOptions
    ) -> None:
        super().__init__(dt)
        p = model.params
        t_sigma = dt if options.t_sigma is None else options.t_sigma
        cur = rl_technical_optimum(p["r_a"], p["l_a"], t_sigma)
        spd = symmetrical_optimum(p["psi_e"] / p["j_total"], cur.t_equiv, options.a)
        i_lim = 0.9 * p["i_max"] if options.current_limit is None else options.current_limit
        self.current = PID(cur.kp / p["u_sup"], cur.ki / p["u_sup"], dt=dt, u_min=-1.0, u_max=1.0)
        self.speed = PID(spd.kp, spd.ki, dt=dt, u_min=-i_lim, u_max=i_lim)
        self._k_emf = p["psi_e"] / p["u_sup"]
        t_pre = options.a**2 * cur.t_equiv
        self._alpha = dt / (t_pre + dt) if options.prefilter else 1.0
        self._omega, self._i, self._ref = obs_index
        self._filtered: float | None = None
        self.reset()

    def reset(self) -> None:
        """Zero integrators and the prefilter."""
        self.current.reset()
        self.speed.reset()
        self._filtered = None

    def compute(self, observation: FloatArray) -> FloatArray:
        """Duty cycle from speed, current and speed reference."""
        w, i, r = observation[self._omega], observation[self._i], observation[self._ref]
        if self._filtered is None:
            self._filtered = float(w)
        self._filtered += self._alpha * (float(r) - self._filtered)
        i_ref = self.speed.update(self._filtered - w)
        duty = self.current.update(i_ref - i, feedforward=self._k_emf * w)
        return np.array([duty], dtype=float)


def _indices(plant: Any, *names: str) -> tuple[int, ...]:
    obs, _ = signals_of(plant)
    return tuple(index_of(obs, n) for n in names)


def design_pmsm_current(plant: Any, model: PlantModel,
                        options: PMSMCurrentPIOptions) -> PMSMCurrentPI:
    """:class:`PMSMCurrentPI` for a plant with the ``pmsm_dq`` model."""
    obs, _ = signals_of(plant)
    idx = _indices(plant, "i_sd", "i_sq")
    refs = (reference_index(obs, "i_sd"), reference_index(obs, "i_sq"))
    dt = plant_dt(plant)
    t_sigma = dt if options.t_sigma is None else options.t_sigma
    return PMSMCurrentPI(dt, model, (*idx, *refs, index_of(obs, "omega")), t_sigma,
                         options.kp_scale, options.ki_scale)


def design_dc_speed(plant: Any, model: PlantModel, options: DCSpeedPIOptions) -> DCSpeedCascadePI:
    """:class:`DCSpeedCascadePI` for a plant with the ``dc_motor`` model."""
    obs, _ = signals_of(plant)
    idx = (*_indices(plant, "omega", "i"), reference_index(obs, "omega"))
    return DCSpeedCascadePI(plant_dt(plant), model, idx, options)
