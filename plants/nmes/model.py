"""Shank physics of NMES knee extension, with fatigue (numpy/scipy; casadi through ``ops``).

The shank model of MODELS.md section 5 (Ferrarin & Pedotti 2000, as used by Arcolezi et al.
2020; values *unverified*), ``theta = 0`` the shank hanging vertically, ``theta > 0`` extension
(``theta = pi/2`` the straight knee of a seated subject):

``J theta'' = -m g l sin(theta) - B theta' + M_s(theta) + fit * M_a``,
``M_s = -lambda exp(-E phi) (phi - omega_s)``, ``phi = theta + pi/2``,
``M_a' = (-M_a + G P) / tau``, ``P`` the delivered pulse width [s].

Added here (MODELS.md asks for them; *Riener et al. 1996 style, values unverified*):

- **Fatigue.** A fitness state ``fit`` in ``[fit_min, 1]`` scales the delivered torque:
  ``fit' = (fit_min - fit) a / T_fat + (1 - fit)(1 - a) / T_rec`` with ``a = M_a / (G P_max)``
  the normalized activation (``P_max`` the stimulator limit, so ``a`` is in ``[0, 1]``).
  ``M_a`` is therefore the *unfatigued* activation torque; the joint receives ``fit * M_a``.
- **Electromechanical delay (EMD).** The plant delivers the pulse width commanded ``emd``
  seconds earlier; :func:`nmes_model` leaves the delay out (a documented plant/model mismatch:
  model-based controllers see a model without it).

The model states are ``theta, omega, M_a, fitness``; the input is the pulse width in
microseconds (converted inside), bounded by the stimulator limit ``[0, P_MAX_US]``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ctrlbench.model import Ops, PlantModel
from ctrlbench.signals import SignalSpec

__all__ = [
    "INPUTS",
    "MATH_OPS",
    "NMES_MODEL_NAME",
    "PARAM_NAMES",
    "P_MAX_US",
    "STATES",
    "THETA_MAX",
    "THETA_MIN",
    "NMESParams",
    "fitness_rate",
    "nmes_dynamics",
    "nmes_model",
    "operating_point",
    "passive_equilibrium",
    "passive_torque",
    "static_pulse",
]

NMES_MODEL_NAME = "nmes_knee"
"""``model().name`` of ``ctrlbench/NMESKnee-v0`` (keys its PID design)."""

P_MAX_US = 500.0
"""Stimulator pulse-width limit [us]: the action's upper bound. Transcutaneous quadriceps
stimulators commonly allow pulse widths up to 500 us (ctrlbench choice; *unverified*)."""

THETA_MIN = -math.pi / 4
"""Lower end of the safe range of motion [rad] (45 deg of flexion past vertical)."""
THETA_MAX = math.pi / 2
"""Upper end of the safe range of motion [rad]: the straight knee (the model has no joint stop,
so the plant ends the episode beyond it)."""

STATES = (
    SignalSpec("theta", "rad", THETA_MIN, THETA_MAX,
               "knee extension angle, 0 = shank hanging vertically"),
    SignalSpec("omega", "rad/s", -20.0, 20.0, "knee angular velocity"),
    SignalSpec("M_a", "N m", 0.0, 40.0, "unfatigued activation torque of the quadriceps"),
    SignalSpec("fitness", "1", 0.0, 1.0, "muscle fitness (fatigue state), scales M_a"),
)
INPUTS = (SignalSpec("P", "us", 0.0, P_MAX_US, "stimulation pulse width (saturated)"),)

MATH_OPS = Ops(sin=math.sin, cos=math.cos, exp=math.exp, fmax=max, fmin=min)
"""Scalar ``math`` namespace for the plant's own integration (faster than numpy on floats)."""


@dataclass(frozen=True)
class NMESParams:
    """Physical parameters of one (virtual) patient, SI units.

    Shank values from MODELS.md section 5 (Ferrarin & Pedotti 2000 via Arcolezi et al. 2020,
    *unverified*); fatigue and EMD in the style of Riener et al. 1996 (*values unverified*,
    ctrlbench choices of plausible magnitude).

    Attributes
    ----------
    J:
        Shank-foot inertia about the knee [kg m^2] (0.362).
    m:
        Shank-foot mass [kg] (4.37).
    l:
        Knee-to-centre-of-mass distance [m] (0.238).
    B:
        Viscous damping [N m s/rad] (0.27).
    lam:
        Passive elastic coefficient lambda [N m/rad] (41.208).
    E:
        Passive elastic exponent [1/rad] (2.024).
    omega_s:
        Rest angle omega of the passive elastic torque in ``phi`` [rad] (2.918).
    tau:
        Activation time constant [s] (0.951).
    G:
        Torque per pulse width [N m/s] (42500: 300 us give 12.75 N m).
    fit_min:
        Fitness of a fully fatigued muscle [-] (0.3; Riener 1996 style, unverified).
    T_fat:
        Fatigue time constant at full activation [s] (30; unverified).
    T_rec:
        Recovery time constant at rest [s] (300; unverified).
    emd:
        Electromechanical delay [s] (0.05; unverified, tens of ms are typical).
    g:
        Gravitational acceleration [m/s^2].
    """

    J: float = 0.362
    m: float = 4.37
    l: float = 0.238  # noqa: E741
    B: float = 0.27
    lam: float = 41.208
    E: float = 2.024
    omega_s: float = 2.918
    tau: float = 0.951
    G: float = 42500.0
    fit_min: float = 0.3
    T_fat: float = 30.0
    T_rec: float = 300.0
    emd: float = 0.05
    g: float = 9.81

    def as_dict(self) -> dict[str, float]:
        """Parameters by name, plus ``p_max`` [s] (the stimulator limit) for the model."""
        d = dataclasses.asdict(self)
        d["p_max"] = P_MAX_US * 1e-6
        return d

    def scaled(self, factors: dict[str, float]) -> NMESParams:
        """A copy with each named parameter multiplied by its factor."""
        return dataclasses.replace(self, **{k: getattr(self, k) * v for k, v in factors.items()})


PARAM_NAMES = tuple(f.name for f in dataclasses.fields(NMESParams) if f.name != "g")
"""The patient parameters a random virtual patient draws (all but ``g``)."""


def passive_torque(theta: Any, p: Any, ops: Ops) -> Any:
    """Passive elastic torque ``M_s = -lambda exp(-E phi)(phi - omega_s)`` [N m]."""
    phi = theta + math.pi / 2
    return -p["lam"] * ops.exp(-p["E"] * phi) * (phi - p["omega_s"])


def fitness_rate(fit: Any, m_a: Any, p: Any) -> Any:
    """``d fit/dt`` [1/s] with the normalized activation ``a = M_a / (G P_max)``."""
    a = m_a / (p["G"] * p["p_max"])
    return (p["fit_min"] - fit) * a / p["T_fat"] + (1.0 - fit) * (1.0 - a) / p["T_rec"]


def nmes_dynamics(x: Any, u: Any, p: Any, ops: Ops) -> list[Any]:
    """``dx/dt`` of ``x = [theta, omega, M_a, fitness]`` for the pulse width ``u = [P]`` [us]."""
    theta, omega, m_a, fit = x[0], x[1], x[2], x[3]
    pulse = u[0] * 1e-6
    torque = (-p["m"] * p["g"] * p["l"] * ops.sin(theta) - p["B"] * omega
              + passive_torque(theta, p, ops) + fit * m_a)
    return [omega, torque / p["J"], (p["G"] * pulse - m_a) / p["tau"], fitness_rate(fit, m_a, p)]


def _static_torque(theta: float, p: dict[str, float]) -> float:
    return p["m"] * p["g"] * p["l"] * math.sin(theta) - passive_torque(theta, p, MATH_OPS)


def passive_equilibrium(params: NMESParams | None = None) -> float:
    """The rest angle without stimulation [rad]: the root of ``-m g l sin(theta) + M_s(theta)``.

    The residual is positive at ``-pi/2`` and negative at ``pi/2`` and strictly decreasing in
    between for the parameter ranges used here, so the root is unique (scipy ``brentq``).
    """
    from scipy.optimize import brentq

    p = (params or NMESParams()).as_dict()
    return float(brentq(lambda th: -_static_torque(th, p), -math.pi / 2, math.pi / 2,
                        xtol=1e-14, rtol=1e-14))


def static_pulse(theta: float, params: NMESParams | None = None, fitness: float = 1.0) -> float:
    """Pulse width [us] that holds ``theta`` at rest (``fit G P = m g l sin(theta) - M_s``).

    Negative below the passive equilibrium (no stimulation holds it there); not clipped.
    """
    p = (params or NMESParams()).as_dict()
    return _static_torque(theta, p) / (fitness * p["G"]) * 1e6


def operating_point(params: NMESParams | None = None, theta_deg: float = 35.0
                    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Steady state ``(x_op, u_op)`` holding ``theta_deg`` under constant stimulation.

    The fitness is at its steady state for the activation held there, and the pulse compensates
    it: ``fit* G P = m g l sin(theta) - M_s(theta)`` with ``fit*`` from ``fit' = 0``.
    """
    from scipy.optimize import brentq

    params = params or NMESParams()
    p = params.as_dict()
    theta = math.radians(theta_deg)
    need = _static_torque(theta, p)
    full = p["G"] * p["p_max"]

    def excess(m_a: float) -> float:
        a = m_a / full
        fit = ((p["fit_min"] * a / p["T_fat"] + (1 - a) / p["T_rec"])
               / (a / p["T_fat"] + (1 - a) / p["T_rec"]))
        return fit * m_a - need

    m_a = float(brentq(excess, 0.0, full))
    a = m_a / full
    fit = ((p["fit_min"] * a / p["T_fat"] + (1 - a) / p["T_rec"])
           / (a / p["T_fat"] + (1 - a) / p["T_rec"]))
    return (theta, 0.0, m_a, fit), (m_a / p["G"] * 1e6,)


def nmes_model(params: NMESParams | None = None, theta_op_deg: float = 35.0) -> PlantModel:
    """The :class:`~ctrlbench.model.PlantModel` of the shank (no EMD; see the module docstring).

    Parameters
    ----------
    params:
        Patient parameters (nominal by default: model-based designs do not know the patient).
    theta_op_deg:
        Angle of the declared operating point [deg] (:func:`operating_point`).
    """
    params = params or NMESParams()
    x_op, u_op = operating_point(params, theta_op_deg)
    meta = {"source": "MODELS.md section 5 (Ferrarin & Pedotti 2000 via Arcolezi et al. 2020); "
                      "fatigue Riener 1996 style (unverified)",
            "time_unit": "s", "mismatch": f"no electromechanical delay (plant: {params.emd} s)"}
    return PlantModel(name=NMES_MODEL_NAME, states=STATES, inputs=INPUTS, outputs=STATES[:1],
                      params=params.as_dict(), dynamics=nmes_dynamics,
                      output=lambda x, u, p, ops: [x[0]], meta=meta, x_op=x_op, u_op=u_op)
