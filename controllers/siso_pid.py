"""Single-loop PID on one reference/tracked pair, and its pole-placement design for the
mass-spring-damper (registered in :data:`controllers.pid_design.PID_DESIGNS`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from controllers.pid import PID
from ctrlbench.controller import FeedbackController
from ctrlbench.model import PlantModel
from ctrlbench.options import Options, option
from ctrlbench.plant import plant_dt, signals_of
from ctrlbench.signals import index_of, reference_index

__all__ = ["SISOPID", "MassSpringDamperPIDOptions", "design_mass_spring_damper"]


@dataclass(frozen=True)
class MassSpringDamperPIDOptions(Options):
    """Design settings of the mass-spring-damper pole-placement PID."""

    bandwidth: float = option(4.0, "closed-loop bandwidth: all three poles at -bandwidth [rad/s]; "
                              "at most 1/dt (the design is continuous-time)", gt=0, le=1e3)


class SISOPID(FeedbackController):
    """PID from one observed error to one action, with static set-point feed-forward.

    ``u = PID(r - y) + k_ff r``, derivative on the measurement, output limits and anti-windup
    from :class:`controllers.pid.PID`.

    Parameters
    ----------
    dt:
        Control period.
    measured, reference:
        Observation positions of the tracked signal and of its reference.
    pid:
        The PID core (gains, limits, filter).
    k_ff:
        Static feed-forward gain on the reference (e.g. the spring stiffness).
    """

    def __init__(self, dt: float, measured: int, reference: int, pid: PID,
                 k_ff: float = 0.0) -> None:
        super().__init__(dt)
        self.measured, self.reference, self.pid, self.k_ff = measured, reference, pid, k_ff

    def reset(self) -> None:
        """Zero the integrator and derivative filter."""
        self.pid.reset()

    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """One PID step."""
        y, r = float(observation[self.measured]), float(observation[self.reference])
        return np.array([self.pid.update(r - y, measurement=y, feedforward=self.k_ff * r)])


def design_mass_spring_damper(plant: Any, model: PlantModel,
                              options: MassSpringDamperPIDOptions) -> FeedbackController:
    """PID with all three closed-loop poles at ``-bandwidth`` (default 4 rad/s).

    With ``G = 1 / (m s^2 + c s + k)`` and ``C = kp + ki/s + kd s`` the closed loop has
    ``m s^3 + (c + kd) s^2 + (k + kp) s + ki = m (s + w)^3``, so ``kd = 3 m w - c``,
    ``kp = 3 m w^2 - k``, ``ki = m w^3``; the spring force at the set-point is fed forward.
    """
    m, c, k = (model.params[n] for n in ("m", "c", "k"))
    w = options.bandwidth
    kp, ki, kd = 3 * m * w**2 - k, m * w**3, 3 * m * w - c
    if kp < 0 or kd < 0:
        raise ValueError(
            f"bandwidth {w} rad/s is below what a PID can place for m={m}, c={c}, k={k}: "
            f"needs w >= {max(math.sqrt(k / (3 * m)), c / (3 * m)):.3g} rad/s"
        )
    obs, act = signals_of(plant)
    dt = plant_dt(plant)
    if w * dt > 1.0:
        raise ValueError(
            f"bandwidth {w} rad/s is too fast for the control period dt = {dt} s; valid: "
            f"<= 1/dt = {1 / dt:.4g} rad/s"
        )
    pid = PID(kp, ki, kd, dt=dt, u_min=act[0].low, u_max=act[0].high)
    return SISOPID(dt, index_of(obs, "x"), reference_index(obs, "x"), pid, k_ff=k)
