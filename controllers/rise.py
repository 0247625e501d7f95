"""Generic RISE controller (robust integral of the sign of the error; registry name ``"rise"``).

The continuous law (MODELS.md section 5), with ``e1 = r - y`` and ``e2 = e1' + alpha1 e1``::

    u(t) = u_bias + (ks + 1) e2(t) - (ks + 1) e2(0)
           + integral_0^t [(ks + 1) alpha2 e2(tau) + beta sgn(e2(tau))] dtau

It applies to any plant with a tracked reference (a :class:`~ctrlbench.signals.SignalSpec` with
``tracks=``) and a one-dimensional ``Box`` action. It is model-free: more action must raise the
tracked signal (a positive plant gain).

**Units** (``units`` option). ``"normalized"`` (default): the error is divided by the span of the
reference signal's bounds (else the tracked signal's, else 1) and the law's output is in units of
the action span (``high - low``, else 1), so ``u = u_bias + span_u * v`` with ``v`` the law's
value; the same gains are of a sensible size on every plant. ``"physical"``: the error is in the
tracked signal's unit and the output in the action's unit. Either way ``alpha1``, ``alpha2`` are in
1 / (the plant's time unit), ``beta`` in output units per time unit, ``tau_d`` in time units, and
``bias`` in the action's unit.

**Discretisation** at the plant's ``dt``, step ``k = 0, 1, ...`` of an episode:

- ``e1_k = (r_k - y_k) / s_e`` (``s_e`` the error scale, 1 for physical units);
- derivative, first-order filter ``s / (tau_d s + 1)`` discretised by backward Euler:
  ``d_k = (tau_d d_(k-1) + e1_k - e1_(k-1)) / (tau_d + dt)``, with ``d_0 = 0`` (no kick from the
  initial error; ``tau_d = 0`` is the plain backward difference);
- ``e2_k = d_k + alpha1 e1_k``; ``e2(0)`` is ``e2_0``;
- integral by backward Euler (the integrand at the end of each period):
  ``I_k = I_(k-1) + dt [(ks + 1) alpha2 e2_k + beta sgn(e2_k)]``, ``I_0 = 0``;
- ``u_k = clip(u_bias + s_u [(ks + 1)(e2_k - e2_0) + I_k], low, high)``.

So ``u_0 = u_bias`` exactly (the ``-(ks + 1) e2(0)`` term), and the output is continuous: the sign
term enters only through the integral.

**Anti-windup: conditional integration (clamping).** When the full increment would take the
unsaturated output above ``high`` while the increment is positive (or below ``low`` while it is
negative), only the part of it that brings the output to that bound is kept, and none when the
output is already beyond it without the increment: the integral never drives a saturated output
further into saturation, the output sits exactly at the bound while it cannot do more (not one
increment short of it, which matters at long periods), and integration resumes in full as soon as
it pulls the output back inside. After a long saturation the output therefore leaves the bound at
the first step at which ``e2`` falls below its value at saturation (as when the error reverses).
``anti_windup=False`` integrates unconditionally (for comparison).

**Defaults** (normalized units: ``ks=4``, ``alpha1=6``, ``alpha2=3``, ``beta=0.05``,
``tau_d=0.02``) were chosen on ``ctrlbench/MassSpringDamper-v0``: over reset seeds 0-9 the step is
tracked with IAE / |step| 0.48-0.52 s (the pole-placement ``pid``: 0.39-0.50 s), overshoot <= 1.6 %,
2 % settling <= 1.6 s and a final error <= 4e-4 m (the sign term's small limit cycle). Other plants
recommend their own gains through ``controller_defaults["rise"]``.

After each step :attr:`RISE.last_info` holds ``e2`` (law units), ``integral`` (``s_u I_k``, action
units), ``saturated`` (+1 at the upper bound, -1 at the lower, 0 inside) and ``integrating`` (0
when anti-windup clamped the increment), recorded by :func:`ctrlbench.simulate.simulate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ctrlbench.controller import FeedbackController
from ctrlbench.options import OptionError, Options, option
from ctrlbench.plant import plant_dt, signals_of
from ctrlbench.signals import SignalSpec, index_of, reference_index

__all__ = ["RISE", "RISEOptions", "make_rise"]

#: Observations are clipped to this magnitude so every intermediate of the law stays finite.
_OBS_CLIP = 1e100


@dataclass(frozen=True)
class RISEOptions(Options):
    """Settings of the RISE controller (units as chosen by ``units``; see the module docstring)."""

    label = "controller 'rise'"
    ks: float = option(4.0, "gain k_s: (ks + 1) multiplies e2 [output * time / error]",
                       ge=0, le=1e4)
    alpha1: float = option(6.0, "alpha1 in e2 = e1' + alpha1 e1 [1/time unit]", ge=0, le=1e4)
    alpha2: float = option(3.0, "alpha2: integral gain (ks + 1) alpha2 on e2 [1/time unit]",
                           ge=0, le=1e4)
    beta: float = option(0.05, "beta: gain of the integrated sgn(e2) [output / time unit]",
                         ge=0, le=1e6)
    tau_d: float = option(0.02, "time constant of the first-order filter on e1' [time unit]; "
                          "0 = backward difference", ge=0, le=1e6)
    bias: float | None = option(
        None, "output at the first step, in action units; None = the action bound nearest zero "
        "(off)")
    units: Literal["normalized", "physical"] = option(
        "normalized", "'normalized': error / reference span, output in action spans; "
        "'physical': tracked-signal and action units", choices=("normalized", "physical"))
    anti_windup: bool = option(
        True, "conditional integration: no integration driving a saturated output further out")
    track: str | None = option(
        None, "name of the tracked signal; None = the first signal that has a reference")


def _span(*specs: SignalSpec) -> float:
    """``high - low`` of the first spec whose bounds are finite and distinct, else 1."""
    for s in specs:
        span = s.high - s.low
        if math.isfinite(span) and span > 0:
            return float(span)
    return 1.0


class RISE(FeedbackController):
    """Discrete RISE law on one tracked signal with a one-dimensional bounded action.

    Parameters
    ----------
    dt:
        Control period (the plant's time unit).
    measured, reference:
        Observation positions of the tracked signal and of its reference.
    low, high:
        Action bounds (may be infinite).
    ks, alpha1, alpha2, beta:
        RISE gains in the law's units.
    tau_d:
        Derivative filter time constant (>= 0).
    bias:
        Output at the first step, in action units, within ``[low, high]``.
    error_scale, output_scale:
        ``s_e`` and ``s_u``: the error is divided by ``error_scale`` and the law's value
        multiplied by ``output_scale`` (both 1 for physical units).
    anti_windup:
        Conditional integration (see the module docstring).
    """

    def __init__(self, dt: float, measured: int, reference: int, low: float, high: float, *,
                 ks: float, alpha1: float, alpha2: float, beta: float, tau_d: float,
                 bias: float, error_scale: float = 1.0, output_scale: float = 1.0,
                 anti_windup: bool = True) -> None:
        super().__init__(dt)
        if not low <= bias <= high:
            raise ValueError(f"bias {bias} is outside the action bounds [{low}, {high}]")
        if not (error_scale > 0 and output_scale > 0):
            raise ValueError(f"scales must be positive, got {error_scale}, {output_scale}")
        self.measured, self.reference = measured, reference
        self.low, self.high = float(low), float(high)
        self.ks, self.alpha1, self.alpha2, self.beta = ks, alpha1, alpha2, beta
        self.tau_d, self.bias = float(tau_d), float(bias)
        self.error_scale, self.output_scale = float(error_scale), float(output_scale)
        self.anti_windup = anti_windup
        self.last_info: dict[str, Any] = {}
        self.reset()

    def reset(self) -> None:
        """Forget ``e2(0)``, the integral and the derivative filter (start of an episode)."""
        self._e2_0: float | None = None
        self._e1_prev = 0.0
        self._deriv = 0.0
        self.integral = 0.0
        self.last_info = {}

    def update(self, error: float) -> float:
        """One step of the law on the error ``r - y`` (tracked-signal units); the action.

        Raises
        ------
        ValueError
            When ``error`` is not finite.
        """
        if not math.isfinite(error):
            raise ValueError(f"RISE: the tracking error must be finite, got {error!r}")
        k1 = self.ks + 1.0
        e1 = error / self.error_scale
        first = self._e2_0 is None
        # filtered derivative of e1 (backward Euler); none at the first step
        if not first:
            self._deriv = (self.tau_d * self._deriv + e1 - self._e1_prev) / (self.tau_d + self.dt)
        self._e1_prev = e1
        e2 = self._deriv + self.alpha1 * e1
        if self._e2_0 is None:
            self._e2_0 = e2
        # backward-Euler integral increment (none at the first step: I_0 = 0)
        inc = 0.0 if first else self.dt * (k1 * self.alpha2 * e2 + self.beta * float(np.sign(e2)))
        prop = k1 * (e2 - self._e2_0)
        # anti-windup: keep only the part of the increment that brings the output to the bound
        # it pushes at (none when the output is already beyond it)
        integ, clamped = self.integral + inc, 0
        if self.anti_windup and inc > 0 and self._out(prop + integ) > self.high:
            integ = max(self.integral, (self.high - self.bias) / self.output_scale - prop)
            clamped = 1
        elif self.anti_windup and inc < 0 and self._out(prop + integ) < self.low:
            integ = min(self.integral, (self.low - self.bias) / self.output_scale - prop)
            clamped = -1
        self.integral = integ
        u_unsat = self._out(prop + integ)
        side = 1 if (u_unsat > self.high or clamped > 0) else (
            -1 if (u_unsat < self.low or clamped < 0) else 0)
        u = self.high if side > 0 else (self.low if side < 0 else u_unsat)
        self.last_info = {
            "e2": e2,
            "integral": self.output_scale * self.integral,
            "saturated": float(side),
            "integrating": 0.0 if clamped else 1.0,
        }
        return u

    def _out(self, law: float) -> float:
        """The unsaturated action for the law's value ``law``."""
        return self.bias + self.output_scale * law

    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """One control step: the RISE action for this observation."""
        y, r = float(observation[self.measured]), float(observation[self.reference])
        if not (math.isfinite(y) and math.isfinite(r)):
            raise ValueError(f"RISE: observation must be finite, got measured {y}, reference {r}")
        y = min(max(y, -_OBS_CLIP), _OBS_CLIP)
        r = min(max(r, -_OBS_CLIP), _OBS_CLIP)
        return np.array([self.update(r - y)])


def make_rise(plant: Any, opts: RISEOptions) -> RISE:
    """RISE for ``plant`` (registry name ``"rise"``).

    Raises
    ------
    OptionError
        ``track`` names no tracked signal, or ``bias`` lies outside the action bounds.
    """
    obs, act = signals_of(plant)
    tracked = [s.tracks for s in obs if s.tracks is not None]
    name = opts.track if opts.track is not None else tracked[0]
    if name not in tracked:
        raise OptionError(f"{opts.label}.track = {name!r} is out of range; valid: one of "
                          f"{', '.join(repr(t) for t in tracked)}")
    measured, reference = index_of(obs, name), reference_index(obs, name)
    a = act[0]
    low, high = float(a.low), float(a.high)
    if opts.bias is None:
        bias = min(max(0.0, low), high)
    elif low <= opts.bias <= high:
        bias = opts.bias
    else:
        raise OptionError(f"{opts.label}.bias = {opts.bias!r} is out of range; valid: within "
                          f"the action bounds [{low:g}, {high:g}] ({a.name} [{a.unit}])")
    normalized = opts.units == "normalized"
    return RISE(
        plant_dt(plant), measured, reference, low, high, ks=opts.ks, alpha1=opts.alpha1,
        alpha2=opts.alpha2, beta=opts.beta, tau_d=opts.tau_d, bias=bias,
        error_scale=_span(obs[reference], obs[measured]) if normalized else 1.0,
        output_scale=_span(a) if normalized else 1.0, anti_windup=opts.anti_windup)
