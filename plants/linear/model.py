"""Mass-spring-damper physics ``m x'' + c x' + k x = F`` and the plant's options (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctrlbench.model import Ops, PlantModel
from ctrlbench.options import Options, option
from ctrlbench.signals import SignalSpec

__all__ = ["MSD_MODEL_NAME", "MassSpringDamperOptions", "mass_spring_damper_model"]

MSD_MODEL_NAME = "mass_spring_damper"
"""``model().name`` of :class:`~plants.linear.env.MassSpringDamper` (keys its PID design)."""


@dataclass(frozen=True)
class MassSpringDamperOptions(Options):
    """Options of ``ctrlbench/MassSpringDamper-v0`` (SI units; textbook values, no paper)."""

    label = "plant 'MassSpringDamper-v0'"
    dt: float = option(0.01, "control period [s]", gt=0, le=1.0)
    ref_range: float = option(1.0, "half-width of the random step reference [m]", ge=0, le=5.0)
    m: float = option(1.0, "mass [kg]", ge=1e-3, le=1e3)
    c: float = option(0.5, "viscous damping [N s/m]", ge=0, le=1e4)
    k: float = option(2.0, "spring stiffness [N/m]", ge=0, le=1e4)


STATES = (
    SignalSpec("x", "m", -5.0, 5.0, "position"),
    SignalSpec("v", "m/s", -50.0, 50.0, "velocity"),
)
INPUTS = (SignalSpec("F", "N", -10.0, 10.0, "applied force"),)


def _dynamics(x: Any, u: Any, p: Any, ops: Ops) -> list[Any]:
    return [x[1], (u[0] - p["c"] * x[1] - p["k"] * x[0]) / p["m"]]


def _output(x: Any, u: Any, p: Any, ops: Ops) -> list[Any]:
    return [x[0]]


def mass_spring_damper_model(m: float = 1.0, c: float = 0.5, k: float = 2.0) -> PlantModel:
    """The plant's :class:`PlantModel`: state ``[x, v]``, input ``[F]``, output ``[x]``,
    operating point at rest at the origin.

    Parameters
    ----------
    m, c, k:
        Mass [kg], damping [N s/m], stiffness [N/m].
    """
    return PlantModel(
        name=MSD_MODEL_NAME,
        states=STATES,
        inputs=INPUTS,
        outputs=(STATES[0],),
        params={"m": m, "c": c, "k": k},
        dynamics=_dynamics,
        output=_output,
        x_op=(0.0, 0.0),
        u_op=(0.0,),
    )
