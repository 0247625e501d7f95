"""Mass-spring-damper position control: ``m x'' + c x' + k x = F``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from ctrlbench.model import Ops, PlantModel
from ctrlbench.plant import Plant
from ctrlbench.signals import SignalSpec

__all__ = ["MassSpringDamper", "MassSpringDamperParams", "mass_spring_damper_model"]


@dataclass(frozen=True)
class MassSpringDamperParams:
    """Physical parameters (SI units); textbook values, not from a specific paper."""

    m: float = 1.0  #: mass [kg]
    c: float = 0.5  #: viscous damping [N s/m]
    k: float = 2.0  #: spring stiffness [N/m]


_STATES = (
    SignalSpec("x", "m", -5.0, 5.0, "position"),
    SignalSpec("v", "m/s", -50.0, 50.0, "velocity"),
)
_INPUTS = (SignalSpec("F", "N", -10.0, 10.0, "applied force"),)


def _dynamics(x: Any, u: Any, p: Any, ops: Ops) -> list[Any]:
    return [x[1], (u[0] - p["c"] * x[1] - p["k"] * x[0]) / p["m"]]


def _output(x: Any, u: Any, p: Any, ops: Ops) -> list[Any]:
    return [x[0]]


def mass_spring_damper_model(params: MassSpringDamperParams | None = None) -> PlantModel:
    """The plant's :class:`PlantModel` (state ``[x, v]``, input ``[F]``, output ``[x]``)."""
    return PlantModel(
        name="mass_spring_damper",
        states=_STATES,
        inputs=_INPUTS,
        outputs=(_STATES[0],),
        params=asdict(params or MassSpringDamperParams()),
        dynamics=_dynamics,
        output=_output,
    )


class MassSpringDamper(Plant):
    """Position control of a mass on a spring.

    Observation ``[x, v, x_ref]``; action ``[F]`` in newtons within ``[-10, 10]``. Each episode
    draws a step reference ``x_ref`` uniformly in ``[-ref_range, ref_range]`` from the reset seed;
    the mass starts at rest at the origin. Reward ``-(x_ref - x)^2 - 1e-3 F^2``.

    Parameters
    ----------
    dt:
        Control period [s].
    ref_range:
        Half-width of the reference distribution [m].
    m, c, k:
        Mass [kg], damping [N s/m], stiffness [N/m].
    """

    def __init__(self, dt: float = 0.01, ref_range: float = 1.0, m: float = 1.0, c: float = 0.5,
                 k: float = 2.0) -> None:
        if not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt}")
        self.dt = dt
        self.ref_range = ref_range
        self._model = mass_spring_damper_model(MassSpringDamperParams(m=m, c=c, k=k))
        self.observation_signals = (
            *_STATES, SignalSpec("x_ref", "m", -5.0, 5.0, "position set-point", tracks="x"))
        self.action_signals = _INPUTS
        self.observation_space = gym.spaces.Box(
            np.array([s.low for s in self.observation_signals]),
            np.array([s.high for s in self.observation_signals]), dtype=np.float64)
        self.action_space = gym.spaces.Box(-10.0, 10.0, shape=(1,), dtype=np.float64)
        self._x = np.zeros(2)
        self._ref = 0.0

    def model(self) -> PlantModel:
        """Exact model of this plant."""
        return self._model

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[NDArray[np.float64], dict[str, Any]]:
        """Start at rest at the origin with a new random step reference."""
        super().reset(seed=seed)
        self._x = np.zeros(2)
        self._ref = float(self.np_random.uniform(-self.ref_range, self.ref_range))
        return self._obs(), {}

    def _obs(self) -> NDArray[np.float64]:
        return np.array([self._x[0], self._x[1], self._ref])

    def _step(self, action: NDArray[np.float64]
              ) -> tuple[NDArray[np.float64], SupportsFloat, bool, bool, dict[str, Any]]:
        self._x = self._model.step(self._x, action, self.dt)
        err = self._ref - self._x[0]
        reward = -(err**2) - 1e-3 * float(action[0]) ** 2
        out_of_bounds = bool(abs(self._x[0]) > 5.0 or abs(self._x[1]) > 50.0)
        return self._obs(), reward, out_of_bounds, False, {"error": err}
