"""``ctrlbench/MassSpringDamper-v0``: position control of a mass on a spring."""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import expm

from ctrlbench.model import PlantModel
from ctrlbench.plant import Plant
from ctrlbench.signals import SignalSpec
from plants.linear.model import INPUTS, STATES, MassSpringDamperOptions, mass_spring_damper_model

__all__ = ["MassSpringDamper"]


class MassSpringDamper(Plant):
    """Position control of a mass on a spring, ``m x'' + c x' + k x = F``.

    Small, fast and with an exact model: the worked example of ``plants/README.md``.

    ## Observation

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0 | ``x`` | m | [-5, 5] | position |
    | 1 | ``v`` | m/s | [-50, 50] | velocity |
    | 2 | ``x_ref`` | m | [-5, 5] | position set-point (``tracks="x"``) |

    ## Action

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0 | ``F`` | N | [-10, 10] | applied force |

    ## Reward
    ``-(x_ref - x)^2 - 1e-3 F^2`` per step.

    ## Starting state
    At rest at the origin; ``x_ref`` uniform in ``[-ref_range, ref_range]`` from the reset seed.

    ## Episode end
    Terminates when ``|x| > 5`` or ``|v| > 50``; the registered id truncates at 1000 steps.

    ## Arguments
    Keyword options of :class:`~plants.linear.model.MassSpringDamperOptions` (``dt``,
    ``ref_range``, ``m``, ``c``, ``k``), validated by type and range. The dynamics are linear,
    so each step is the exact zero-order-hold solution (a matrix exponential computed once).

    ## Version history
    - v0: first version (RK4 steps until the exact discretisation; trajectories agree to
      ~1e-9 at the default parameters).
    """

    def __init__(self, **options: Any) -> None:
        opts = MassSpringDamperOptions.build(options, what="plant 'MassSpringDamper-v0'")
        self.options = opts
        self.dt = opts.dt
        self.ref_range = opts.ref_range
        self._model = mass_spring_damper_model(opts.m, opts.c, opts.k)
        # exact zero-order-hold discretisation: stable for any stiffness the options allow
        m, c, k = opts.m, opts.c, opts.k
        aug = np.array([[0.0, 1.0, 0.0], [-k / m, -c / m, 1.0 / m], [0.0, 0.0, 0.0]])
        phi = expm(aug * self.dt)
        self._ad, self._bd = phi[:2, :2], phi[:2, 2]
        ref = SignalSpec("x_ref", "m", -5.0, 5.0, "position set-point", tracks="x")
        self.set_signals((*STATES, ref), INPUTS)
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
        self._x = self._ad @ self._x + self._bd * action[0]
        err = self._ref - self._x[0]
        reward = -(err**2) - 1e-3 * float(action[0]) ** 2
        out_of_bounds = bool(abs(self._x[0]) > 5.0 or abs(self._x[1]) > 50.0)
        return self._obs(), reward, out_of_bounds, False, {"error": err}
