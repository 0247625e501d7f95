"""Discrete PID with anti-windup, filtered derivative, output limits and bumpless reset.

:class:`PID` is the numerical core, usable on its own (the LLM entropy controllers reuse it) and
vectorised: gains, limits and signals may be scalars or arrays of one shape (e.g. the d and q
current loops of a PMSM in one object).

Discretisation (sample time ``dt``):

- proportional ``P = kp * e``
- integral, forward Euler with back-calculation anti-windup
  ``I <- I + dt * (ki * e + kaw * (u_sat - u_unsat))``
- derivative on the measurement (no derivative kick on set-point steps), first-order filtered with
  time constant ``tau_d`` (backward Euler): ``D <- (tau_d * D - kd * (y - y_prev)) / (tau_d + dt)``

The output is ``u = clip(P + I + D + feedforward, u_min, u_max)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["PID", "PIDState"]

FloatArray = NDArray[np.float64]


@dataclass
class PIDState:
    """Explicit internal state of a :class:`PID`.

    Attributes
    ----------
    integral:
        Integrator value (same units as the output).
    derivative:
        Filtered derivative term.
    prev_measurement:
        Last measurement, ``None`` before the first update.
    """

    integral: FloatArray
    derivative: FloatArray
    prev_measurement: FloatArray | None = None


class PID:
    """Discrete PID controller (parallel form).

    Parameters
    ----------
    kp, ki, kd:
        Proportional, integral (1/s) and derivative (s) gains.
    dt:
        Sample time in seconds (or the plant's time unit); must be positive.
    tau_d:
        Derivative filter time constant; ``None`` uses ``kd / (kp * 10)`` when ``kp > 0`` else
        ``dt`` (a derivative bandwidth ten times the PD corner).
    u_min, u_max:
        Output limits.
    kaw:
        Back-calculation anti-windup gain (1/s); ``None`` uses ``ki / kp`` when ``kp > 0`` else
        ``1 / dt`` (the classic ``1/Ti`` tracking time).
    """

    def __init__(
        self,
        kp: ArrayLike,
        ki: ArrayLike = 0.0,
        kd: ArrayLike = 0.0,
        *,
        dt: float,
        tau_d: ArrayLike | None = None,
        u_min: ArrayLike = -np.inf,
        u_max: ArrayLike = np.inf,
        kaw: ArrayLike | None = None,
    ) -> None:
        if not (np.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive finite number, got {dt!r}")
        self.kp = np.asarray(kp, dtype=float)
        self.ki = np.asarray(ki, dtype=float)
        self.kd = np.asarray(kd, dtype=float)
        self.dt = float(dt)
        self.u_min = np.asarray(u_min, dtype=float)
        self.u_max = np.asarray(u_max, dtype=float)
        if np.any(self.u_min > self.u_max):
            raise ValueError(f"u_min {self.u_min} exceeds u_max {self.u_max}")
        safe_kp = np.where(self.kp > 0, self.kp, 1.0)
        if tau_d is None:
            tau_d = np.where(self.kp > 0, self.kd / (10.0 * safe_kp), self.dt)
        self.tau_d = np.maximum(np.asarray(tau_d, dtype=float), 0.0)
        if kaw is None:
            kaw = np.where(self.kp > 0, self.ki / safe_kp, 1.0 / self.dt)
        self.kaw = np.asarray(kaw, dtype=float)
        self._shape = np.broadcast_shapes(
            self.kp.shape, self.ki.shape, self.kd.shape, self.u_min.shape, self.u_max.shape
        )
        self.state = PIDState(np.zeros(self._shape), np.zeros(self._shape))

    def reset(self, u0: ArrayLike = 0.0, error: ArrayLike = 0.0) -> None:
        """Reset the state; bumpless: the next output with ``error`` is ``u0`` (within limits)."""
        u0 = np.clip(np.asarray(u0, dtype=float), self.u_min, self.u_max)
        integral = u0 - self.kp * np.asarray(error, dtype=float)
        self.state = PIDState(
            integral=np.broadcast_to(integral, self._shape).astype(float).copy(),
            derivative=np.zeros(self._shape),
            prev_measurement=None,
        )

    def update(
        self,
        error: ArrayLike,
        measurement: ArrayLike | None = None,
        feedforward: ArrayLike = 0.0,
    ) -> Any:
        """Advance one sample and return the saturated output.

        Parameters
        ----------
        error:
            Set-point minus measurement.
        measurement:
            Process value for the derivative term; ``None`` differentiates ``-error`` instead.
        feedforward:
            Added to the PID output before saturation (e.g. back-EMF compensation).

        Returns
        -------
        float or numpy.ndarray
            The output, a Python float when the controller is scalar.
        """
        e = np.asarray(error, dtype=float)
        if not np.all(np.isfinite(e)):
            raise ValueError(f"PID error signal must be finite, got {e}")
        y = -e if measurement is None else np.asarray(measurement, dtype=float)
        s = self.state
        if s.prev_measurement is not None:
            # Backward-Euler filtered derivative of the measurement.
            s.derivative = (self.tau_d * s.derivative - self.kd * (y - s.prev_measurement)) / (
                self.tau_d + self.dt
            )
        s.prev_measurement = np.array(y, dtype=float)
        u_unsat = self.kp * e + s.integral + s.derivative + np.asarray(feedforward, dtype=float)
        u = np.clip(u_unsat, self.u_min, self.u_max)
        # Forward-Euler integral with back-calculation anti-windup.
        s.integral = s.integral + self.dt * (self.ki * e + self.kaw * (u - u_unsat))
        return float(u) if u.ndim == 0 else u
