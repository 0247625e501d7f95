"""``ctrlbench/RBC-v0``: the single-agent view of Rayleigh–Bénard convection control."""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from ctrlbench.plant import Plant
from ctrlbench.signals import SignalSpec
from plants.rbc.backend import Measurement, Simulation
from plants.rbc.model import (
    N_SEGMENTS,
    PROBE_COLS,
    PROBE_ROWS,
    agent_columns,
    probe_nusselt,
    segment_temperatures,
)
from plants.rbc.options import RBCOptions

__all__ = [
    "GLOBAL_WEIGHT",
    "RBC",
    "REWARD_OFFSET",
    "local_nusselt",
    "probe_signals",
    "step_info",
]

REWARD_OFFSET = 2.6726
"""The authors' reward offset (their uncontrolled probe Nusselt number)."""
GLOBAL_WEIGHT = 0.9985
"""Weight of the global probe Nusselt number in an agent's reward (local: 1 - this)."""
VELOCITY_BOUND = 10.0
"""Observation bound of the velocities (the solver flags a blow-up beyond it)."""


def probe_signals() -> tuple[SignalSpec, ...]:
    """The 768 observation signals: u_x, u_y, then T on the 8 x 32 probes, row-major (rows top
    to bottom)."""
    out = []
    for name, unit, lo, hi, what in (
            ("ux", "1", -VELOCITY_BOUND, VELOCITY_BOUND, "horizontal velocity"),
            ("uy", "1", -VELOCITY_BOUND, VELOCITY_BOUND, "vertical velocity"),
            ("T", "1", 0.0, 4.0, "temperature")):
        for r in range(PROBE_ROWS):
            for c in range(PROBE_COLS):
                out.append(SignalSpec(f"{name}_{r}_{c}", unit, lo, hi,
                                      f"{what} at probe row {r}, column {c}"))
    return tuple(out)


ACTIONS = tuple(SignalSpec(f"a{i}", "1", -1.0, 1.0, f"heating of bottom segment {i}: "
                           f"T_{i} = 2 + 0.75 (a_{i} - mean a), rescaled to |T_i - 2| <= 0.75")
                for i in range(N_SEGMENTS))


def local_nusselt(probes: NDArray[np.float64], kappa: float) -> NDArray[np.float64]:
    """Probe Nusselt number over each agent's own probe columns, ``(batch, 10)``."""
    cols = [agent_columns(i) for i in range(N_SEGMENTS)]
    return np.stack([probe_nusselt(probes[:, 1][..., c], probes[:, 2][..., c], kappa)
                     for c in cols], axis=-1)


def step_info(m: Measurement, kappa: float, i: int = 0) -> dict[str, Any]:
    """The ``info`` of flow ``i``: Nusselt numbers (probe global and per agent, physical),
    rolls, time, blow-up flag."""
    return {"nu_probe": float(m["nu_probe"][i]),
            "nu_local": local_nusselt(m["probes"][i:i + 1], kappa)[0].tolist(),
            "nu_physical": float(m["nu_physical"][i]), "nu_bottom": float(m["nu_bottom"][i]),
            "nu_top": float(m["nu_top"][i]), "rolls": int(m["rolls"][i]),
            "time": float(m["time"][i]), "blown_up": bool(m["blown_up"][i])}


class RBC(Plant):
    """2-D Rayleigh–Bénard convection heated by 10 bottom segments (Vignon et al. 2023).

    Ra = 1e4, Pr = 0.7 in half-height free-fall units on ``[0, 2 pi) x [-1, 1]``; the top wall
    is held at T = 1, the bottom at a 10-segment profile of mean exactly 2 (MODELS.md section
    1). One step holds an action for ``action_period`` (1.5) time units, 30 solver steps of
    0.05.

    ## Observation

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0-255 | ``ux_r_c`` | 1 | [-10, 10] | horizontal velocity on the 8 x 32 probes |
    | 256-511 | ``uy_r_c`` | 1 | [-10, 10] | vertical velocity |
    | 512-767 | ``T_r_c`` | 1 | [0, 4] | temperature |

    Probe rows are rows 0, 8, .., 56 of the 64 Gauss–Chebyshev points (top first), columns
    every 3rd of 96 uniform points in x.

    ## Action

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0-9 | ``a0``..``a9`` | 1 | [-1, 1] | heating of each bottom segment |

    ``T_i = 2 + (v_i - mean v) / max(1, max|v - mean v| / 0.75)``, ``v = 0.75 a``, blended
    between segments by a cubic over +-0.03. NaN or out-of-range actions raise ``ActionError``.

    ## Reward
    ``2.6726 - Nu_probe``: the authors' probe Nusselt number (global) below its uncontrolled
    value. The multi-agent views (:mod:`plants.rbc.multi`) give agent ``i``
    ``2.6726 - (0.9985 Nu_probe + 0.0015 Nu_local_i)``.

    ## Starting state
    ``start="developed"``: the uncontrolled flow 400 time units after the authors' random start
    (cached on disk, :mod:`plants.rbc.start`); ``"authors"``: that random start itself;
    ``"conduction"``: the conductive state plus noise.

    ## Episode end
    The registered id truncates after 200 actions. A flow that blows up (a velocity above 10 or
    not finite) terminates with ``info["blown_up"]``; observations stay finite.
    ``info``: ``nu_probe``, ``nu_local`` (10), ``nu_physical`` (mean of the wall values),
    ``nu_bottom``, ``nu_top``, ``rolls``, ``time``, ``blown_up``.

    ## Arguments
    Keyword options of :class:`~plants.rbc.options.RBCOptions`.

    ## Version history
    - v0: first version.
    """

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(self, **options: Any) -> None:
        opts = RBCOptions.build(options, what="plant 'RBC-v0'")
        self.options = opts
        self.dt = float(opts.action_period)
        self.set_signals(probe_signals(), ACTIONS)
        self.sim = Simulation(opts, batch=1)
        self._last: Measurement | None = None

    def _observe(self) -> tuple[NDArray[np.float64], dict[str, Any], Measurement]:
        m = self.sim.measure()
        space = self.observation_space
        assert isinstance(space, spaces.Box)
        obs = np.clip(m["probes"][0].reshape(-1), space.low, space.high).astype(np.float64)
        return obs, step_info(m, self.sim.params.kappa), m

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[NDArray[np.float64], dict[str, Any]]:
        """Start from the configured start (a seed picks the noise of the random starts)."""
        super().reset(seed=seed)
        noise_seed = int(self.np_random.integers(2**31 - 1))
        self.sim.reset(seed=noise_seed)
        obs, info, self._last = self._observe()
        return obs, info

    def _step(self, action: NDArray[np.float64]
              ) -> tuple[NDArray[np.float64], SupportsFloat, bool, bool, dict[str, Any]]:
        self.sim.apply(segment_temperatures(action)[None])
        self.sim.advance()
        obs, info, self._last = self._observe()
        reward = REWARD_OFFSET - info["nu_probe"]
        return obs, float(reward), bool(info["blown_up"]), False, info

    def close(self) -> None:
        """Stop the FEM worker, if any."""
        self.sim.close()
        super().close()
