"""PI gain design from a plant model: technical and symmetrical optimum for cascaded drives.

The classical rules for cascaded drive control (Schröder, *Elektrische Antriebe – Regelung von
Antriebssystemen*; Lunze, *Regelungstechnik 1*), with all small delays lumped into one time
constant ``T_sigma`` (here the zero-order hold and sampling of a discrete loop, ``~dt``):

- **Technical optimum** (magnitude optimum) for a first-order lag plus ``T_sigma``,
  ``G(s) = K / ((1 + s T) (1 + s T_sigma))``: the PI zero cancels ``T`` (``T_i = T``) and
  ``K_p = T / (2 K T_sigma)``. Closed loop ≈ second order with damping 1/sqrt(2): 4.3 % overshoot,
  10-90 % rise ≈ 3.4 ``T_sigma``, equivalent first-order lag ``T_e = 2 T_sigma`` for an outer loop.
  For an R-L circuit (``K = 1/R``, ``T = L/R``): ``K_p = L / (2 T_sigma)``,
  ``K_i = R / (2 T_sigma)``.
- **Symmetrical optimum** for an integrator plus lag, ``G(s) = K_I / (s (1 + s T_e))``:
  ``K_p = 1 / (a K_I T_e)``, ``T_i = a² T_e``; crossover at ``1 / (a T_e)``, phase margin
  ``atan((a² - 1) / (2 a))`` (a = 2: 37°, a = 4: 62°). A set-point prefilter ``1 / (1 + s T_i)``
  cancels the PI zero and removes most of the step overshoot.
- **Feed-forward / decoupling**: the back-EMF ``psi_e omega`` of a DC motor and the cross-coupling
  ``-omega_el L_q i_q`` / ``omega_el (L_d i_d + psi_p)`` of a PMSM in the dq frame are added to the
  PI outputs, so each current loop sees the plain R-L circuit the rules assume.

gym-electric-motor's own ``gem_controllers`` uses ``K_p = L / (a tau)`` and ``K_i = K_p / (a² tau)``
with ``a = 4`` for its current loops (half our proportional gain and a 16-sample integral time).

**The design registry.** :data:`PID_DESIGNS` maps a model name (the constant a plant family
exports, e.g. ``plants.motor.model.DC_MODEL_NAME``) to a lazy design function
``design(plant, model, options) -> Controller`` and that design's own options dataclass. The
``"pid"`` controller (:func:`make_pid`) looks the plant's ``model().name`` up there; its options
are the design's (:func:`pid_options`), and it applies only to plants whose model has a design
(:func:`pid_requires`). A new plant family adds one line in its own package::

    PID_DESIGNS.register(MY_MODEL_NAME, "mypkg.design:design", options="mypkg.design:MyOptions")
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ctrlbench.capabilities import Requires
from ctrlbench.options import Options
from ctrlbench.registry import PID_DESIGNS

__all__ = [
    "PID_DESIGNS",
    "PIGains",
    "make_pid",
    "pid_options",
    "pid_requires",
    "rl_technical_optimum",
    "symmetrical_optimum",
    "technical_optimum",
]

# PID_DESIGNS (model name -> design) is defined in ctrlbench.registry and re-exported here.


@dataclass(frozen=True)
class PIGains:
    """Parallel-form PI gains ``u = kp e + ki ∫e dt``.

    Attributes
    ----------
    kp:
        Proportional gain (output unit per error unit).
    ki:
        Integral gain (output unit per error unit and second).
    t_equiv:
        Equivalent first-order lag of the closed loop (s), for designing an outer loop.
    """

    kp: float
    ki: float
    t_equiv: float


def _positive(**values: float) -> None:
    for name, v in values.items():
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be positive and finite, got {v!r}")


def technical_optimum(gain: float, t_lag: float, t_sigma: float) -> PIGains:
    """PI by the technical optimum for ``gain / ((1 + s t_lag) (1 + s t_sigma))``.

    Parameters
    ----------
    gain:
        Static plant gain ``K``.
    t_lag:
        Dominant (compensated) time constant ``T`` (s).
    t_sigma:
        Sum of the small, uncompensated time constants (s).

    Returns
    -------
    PIGains
        ``kp = T / (2 K T_sigma)``, ``ki = kp / T``, ``t_equiv = 2 T_sigma``.
    """
    _positive(gain=gain, t_lag=t_lag, t_sigma=t_sigma)
    kp = t_lag / (2.0 * gain * t_sigma)
    return PIGains(kp=kp, ki=kp / t_lag, t_equiv=2.0 * t_sigma)


def rl_technical_optimum(resistance: float, inductance: float, t_sigma: float) -> PIGains:
    """Current-loop PI of an R-L circuit (volts per ampere): ``kp = L/(2 T_s)``, ``ki = R/(2 T_s)``.

    Parameters
    ----------
    resistance:
        Winding resistance (Ohm).
    inductance:
        Winding inductance (H).
    t_sigma:
        Sum of small time constants of the loop (s).

    Returns
    -------
    PIGains
        Gains in V/A and V/(A s).
    """
    _positive(resistance=resistance, inductance=inductance)
    return technical_optimum(1.0 / resistance, inductance / resistance, t_sigma)


def symmetrical_optimum(integrator_gain: float, t_equiv: float, a: float = 4.0) -> PIGains:
    """PI by the symmetrical optimum for ``integrator_gain / (s (1 + s t_equiv))``.

    Parameters
    ----------
    integrator_gain:
        ``K_I`` of the integrating plant, e.g. ``psi_e / J`` from current to speed.
    t_equiv:
        Lag of the inner closed loop (s), e.g. ``PIGains.t_equiv`` of the current loop.
    a:
        Design parameter > 1: crossover at ``1/(a t_equiv)``, integral time ``a² t_equiv``.

    Returns
    -------
    PIGains
        ``kp = 1/(a K_I T_e)``, ``ki = kp/(a² T_e)``; ``t_equiv`` ≈ ``a T_e`` (crossover).
    """
    _positive(integrator_gain=integrator_gain, t_equiv=t_equiv)
    if not a > 1.0:
        raise ValueError(f"a must exceed 1, got {a!r}")
    kp = 1.0 / (a * integrator_gain * t_equiv)
    return PIGains(kp=kp, ki=kp / (a * a * t_equiv), t_equiv=a * t_equiv)


def _model_name(plant: Any) -> str:
    return str(plant.get_wrapper_attr("model")().name)


def pid_options(plant: Any) -> type[Options] | None:
    """The options class of the PID design for ``plant``'s model (``KeyError`` without one)."""
    return PID_DESIGNS.options(_model_name(plant))


def pid_requires() -> Requires:
    """What ``"pid"`` needs: a model with a registered design and a tracked reference."""
    return Requires(model=True, references=True, model_names=tuple(PID_DESIGNS.names()))


def make_pid(plant: Any, options: Options) -> Any:
    """PI/PID designed from ``plant.model()`` (registry name ``"pid"``).

    Parameters
    ----------
    plant:
        A ctrlbench plant (possibly wrapped) whose model has a design in :data:`PID_DESIGNS`.
    options:
        The design's options (:func:`pid_options` gives the class).

    Returns
    -------
    Controller
        The controller the registered design builds.
    """
    model = plant.get_wrapper_attr("model")()
    design = PID_DESIGNS.load(model.name)
    return design(plant, model, options)
