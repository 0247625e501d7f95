"""Motor physics: parameter dataclasses and :class:`~ctrlbench.model.PlantModel` builders.

Two models, written once over an ``ops`` namespace so they evaluate in numpy and build casadi
graphs:

- ``dc_motor``: permanently excited DC motor on a four-quadrant converter with GEM's polynomial
  static load. States ``(omega, i)``, input ``duty`` in [-1, 1] (armature voltage
  ``u = duty * u_sup``)::

      L_a di/dt     = duty * u_sup - R_a i - psi_e omega
      J  domega/dt  = psi_e i - T_L(omega)
      T_L(omega)    = c omega |omega| + b omega + clip(J / tau_decay * omega, -a, a)

- ``pmsm_dq``: permanent-magnet synchronous motor in the rotor (dq) frame at a mechanical speed
  ``omega`` held by the load (GEM's ``ConstantSpeedLoad``), electrical speed ``omega_el = p omega``.
  States ``(i_sd, i_sq)``, inputs ``(u_sd_cmd, u_sq_cmd)`` in [-1, 1] scaled by the B6 bridge's
  largest voltage vector ``2/3 u_sup``::

      L_d di_sd/dt = u_sd - R_s i_sd + omega_el L_q i_sq
      L_q di_sq/dt = u_sq - R_s i_sq - omega_el (L_d i_sd + psi_p)
      T            = 3/2 p (psi_p + (L_d - L_q) i_sd) i_sq

  The electrical angle advances as ``d epsilon/dt = omega_el``; it does not enter the dq
  equations, so it is not a model state (the plant uses it to map dq voltages to the phases).

Default values are GEM 3.0.3's (``motor_parameter`` of its ``DcPermanentlyExcitedMotor`` and
``PermanentMagnetSynchronousMotor``; the PMSM values cite Brosch et al., IEEE TPEL 2020,
doi:10.1109/TPEL.2020.3006779); the plants read them from the GEM instance they wrap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ctrlbench.model import Ops, PlantModel
from ctrlbench.signals import SignalSpec

__all__ = [
    "DC_MODEL_NAME",
    "PMSM_MODEL_NAME",
    "DCMotorParams",
    "PMSMParams",
    "dc_motor_model",
    "pmsm_dq_model",
]

DC_MODEL_NAME = "dc_motor"
"""``model().name`` of :class:`~plants.motor.env.DCSpeed` (keys its PID design)."""
PMSM_MODEL_NAME = "pmsm_dq"
"""``model().name`` of :class:`~plants.motor.env.PMSMCurrent` (keys its PID design)."""


@dataclass(frozen=True)
class DCMotorParams:
    """Permanently excited DC motor + converter + polynomial static load (SI units).

    Attributes
    ----------
    r_a:
        Armature resistance (Ohm).
    l_a:
        Armature inductance (H).
    psi_e:
        Excitation flux linkage = torque and EMF constant (Wb = N·m/A = V·s/rad).
    j_total:
        Rotor plus load inertia (kg·m²).
    u_sup:
        DC-link voltage (V); armature voltage is ``duty * u_sup``.
    load_a, load_b, load_c:
        Static load torque coefficients: constant (N·m), viscous (N·m·s/rad), quadratic
        (N·m·s²/rad²).
    tau_decay:
        GEM's smoothing time of the constant load term around zero speed (s).
    i_max:
        Armature current limit (A); exceeding it terminates the episode.
    omega_max:
        Speed limit (rad/s).
    """

    r_a: float = 0.016
    l_a: float = 19e-6
    psi_e: float = 0.165
    j_total: float = 0.0251
    u_sup: float = 60.0
    load_a: float = 0.0
    load_b: float = 0.0
    load_c: float = 0.0
    tau_decay: float = 1e-3
    i_max: float = 210.0
    omega_max: float = 400.0



@dataclass(frozen=True)
class PMSMParams:
    """Permanent-magnet synchronous motor on a B6 bridge at constant speed (SI units).

    Attributes
    ----------
    p:
        Pole pairs.
    r_s:
        Stator resistance (Ohm).
    l_d, l_q:
        d- and q-axis inductances (H).
    psi_p:
        Permanent-magnet flux linkage (Wb).
    omega:
        Mechanical speed held by the load (rad/s).
    u_sup:
        DC-link voltage (V).
    i_max:
        Current-vector limit ``sqrt(i_sd² + i_sq²)`` (A); exceeding it terminates the episode.
    """

    p: float = 3.0
    r_s: float = 18e-3
    l_d: float = 0.37e-3
    l_q: float = 1.2e-3
    psi_p: float = 66e-3
    omega: float = 100.0
    u_sup: float = 300.0
    i_max: float = 400.0

    @property
    def u_scale(self) -> float:
        """Volts per unit of the normalised dq-voltage command: ``2/3 u_sup`` (hexagon vertex)."""
        return 2.0 / 3.0 * self.u_sup

    @property
    def omega_el(self) -> float:
        """Electrical speed ``p * omega`` (rad/s)."""
        return self.p * self.omega



# -- DC motor -------------------------------------------------------------------------------------
def _dc_dynamics(x: Any, u: Any, p: Mapping[str, float], ops: Ops) -> Sequence[Any]:
    omega, i = x[0], x[1]
    lin = p["j_total"] / p["tau_decay"] * omega
    load = (
        p["load_c"] * omega * ops.fabs(omega)
        + p["load_b"] * omega
        + ops.fmax(-p["load_a"], ops.fmin(p["load_a"], lin))
    )
    d_omega = (p["psi_e"] * i - load) / p["j_total"]
    d_i = (u[0] * p["u_sup"] - p["r_a"] * i - p["psi_e"] * omega) / p["l_a"]
    return [d_omega, d_i]


def _dc_output(x: Any, u: Any, p: Mapping[str, float], ops: Ops) -> Sequence[Any]:
    return [x[0], p["psi_e"] * x[1], x[1]]


def dc_motor_model(params: DCMotorParams | None = None) -> PlantModel:
    """The DC speed-control model; see the module docstring for the equations.

    Parameters
    ----------
    params:
        Motor parameters; ``None`` uses GEM's defaults.

    Returns
    -------
    PlantModel
        States ``(omega, i)``, input ``duty``, outputs ``(omega, torque, i)``.
    """
    pr = params or DCMotorParams()
    return PlantModel(
        name=DC_MODEL_NAME,
        states=(
            SignalSpec("omega", "rad/s", -pr.omega_max, pr.omega_max, "mechanical speed"),
            SignalSpec("i", "A", -pr.i_max, pr.i_max, "armature current"),
        ),
        inputs=(
            SignalSpec("duty", "1", -1.0, 1.0, "converter duty cycle, armature voltage/u_sup"),
        ),
        outputs=(
            SignalSpec("omega", "rad/s", -pr.omega_max, pr.omega_max, "mechanical speed"),
            SignalSpec("torque", "N*m", description="electrical torque psi_e * i"),
            SignalSpec("i", "A", -pr.i_max, pr.i_max, "armature current"),
        ),
        params=asdict(pr),
        dynamics=_dc_dynamics,
        output=_dc_output,
        meta={"source": "gym-electric-motor 3.0.3 DcPermanentlyExcitedMotor"},
        x_op=(0.0, 0.0),  # standstill; exact for linearization (affine without static load)
        u_op=(0.0,),
    )


# -- PMSM -----------------------------------------------------------------------------------------
def _pmsm_dynamics(x: Any, u: Any, p: Mapping[str, float], ops: Ops) -> Sequence[Any]:
    i_d, i_q = x[0], x[1]
    scale = 2.0 / 3.0 * p["u_sup"]
    w_el = p["p"] * p["omega"]
    d_id = (u[0] * scale - p["r_s"] * i_d + w_el * p["l_q"] * i_q) / p["l_d"]
    d_iq = (u[1] * scale - p["r_s"] * i_q - w_el * (p["l_d"] * i_d + p["psi_p"])) / p["l_q"]
    return [d_id, d_iq]


def _pmsm_output(x: Any, u: Any, p: Mapping[str, float], ops: Ops) -> Sequence[Any]:
    torque = 1.5 * p["p"] * (p["psi_p"] + (p["l_d"] - p["l_q"]) * x[0]) * x[1]
    return [x[0], x[1], torque]


def pmsm_dq_model(params: PMSMParams | None = None) -> PlantModel:
    """The PMSM dq current model at constant speed; see the module docstring.

    Parameters
    ----------
    params:
        Motor parameters; ``None`` uses GEM's defaults (speed 100 rad/s).

    Returns
    -------
    PlantModel
        States ``(i_sd, i_sq)``, inputs ``(u_sd_cmd, u_sq_cmd)``, outputs ``(i_sd, i_sq, torque)``.
    """
    pr = params or PMSMParams()
    return PlantModel(
        name=PMSM_MODEL_NAME,
        states=(
            SignalSpec("i_sd", "A", -pr.i_max, pr.i_max, "d-axis stator current"),
            SignalSpec("i_sq", "A", -pr.i_max, pr.i_max, "q-axis stator current"),
        ),
        inputs=(
            SignalSpec("u_sd_cmd", "1", -1.0, 1.0, "d-axis voltage / (2/3 u_sup)"),
            SignalSpec("u_sq_cmd", "1", -1.0, 1.0, "q-axis voltage / (2/3 u_sup)"),
        ),
        outputs=(
            SignalSpec("i_sd", "A", -pr.i_max, pr.i_max, "d-axis stator current"),
            SignalSpec("i_sq", "A", -pr.i_max, pr.i_max, "q-axis stator current"),
            SignalSpec("torque", "N*m", description="electrical torque"),
        ),
        params=asdict(pr),
        dynamics=_pmsm_dynamics,
        output=_pmsm_output,
        meta={
            "source": "gym-electric-motor 3.0.3 PermanentMagnetSynchronousMotor",
        },
        x_op=(0.0, 0.0),  # the model is affine in (x, u): linearization is exact anywhere
        u_op=(0.0, 0.0),
    )
