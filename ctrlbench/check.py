"""``check_plant``: Gymnasium's and SB3's env checkers plus a seeded determinism check."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from ctrlbench.plant import signals_of
from ctrlbench.registry import make_plant

__all__ = ["CheckReport", "check_plant"]


@dataclass
class CheckReport:
    """Outcome of :func:`check_plant`: one entry per check, ``None`` when it passed."""

    plant: str
    results: dict[str, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(v is None for v in self.results.values())


class _SeededActions:
    """Open-loop controller replaying a seeded random action sequence."""

    def __init__(self, space: gym.spaces.Space[Any], seed: int) -> None:
        self.space, self.seed = space, seed

    def reset(self) -> None:
        self.space.seed(self.seed)

    def predict(
        self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[Any, None]:
        return self.space.sample(), None


def _determinism(make: Callable[[], gym.Env[Any, Any]], steps: int, seed: int) -> None:
    from ctrlbench.simulate import simulate

    trajs = []
    for _ in range(2):
        env = make()
        trajs.append(simulate(env, _SeededActions(env.action_space, seed), steps=steps, seed=seed))
        env.close()
    a, b = trajs
    if a.observations.shape != b.observations.shape or not (
        np.array_equal(a.observations, b.observations) and np.array_equal(a.rewards, b.rewards)
    ):
        raise AssertionError(f"same seed {seed} gave different trajectories")


def _signals(env: gym.Env[Any, Any]) -> None:
    obs_sig, act_sig = signals_of(env)
    n_obs = int(np.prod(env.observation_space.shape or (1,)))
    n_act = int(np.prod(env.action_space.shape or (1,)))
    if len(obs_sig) != n_obs or len(act_sig) != n_act:
        raise AssertionError(
            f"{len(obs_sig)} observation / {len(act_sig)} action signals declared for spaces of "
            f"size {n_obs} / {n_act}"
        )
    names = [s.name for s in obs_sig]
    for s in obs_sig:
        if s.tracks is not None and s.tracks not in names:
            raise AssertionError(f"reference {s.name!r} tracks unknown signal {s.tracks!r}")


def check_plant(plant_id: str, steps: int = 200, seed: int = 0, **kwargs: Any) -> CheckReport:
    """Run every conformance check on a registered plant and report each outcome.

    Checks: declared signals match the spaces; Gymnasium's ``check_env``; Stable-Baselines3's
    ``check_env`` (when SB3 is installed); the same seed gives an identical trajectory under a
    seeded random action sequence of ``steps`` steps.
    """

    def make() -> gym.Env[Any, Any]:
        return make_plant(plant_id, **kwargs)

    report = CheckReport(plant_id)

    def run(name: str, fn: Callable[[], None]) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn()
            report.results[name] = None
        except Exception as exc:
            report.results[name] = f"{type(exc).__name__}: {exc}"

    def gym_check() -> None:
        from gymnasium.utils.env_checker import check_env

        check_env(make().unwrapped, skip_render_check=True)

    def sb3_check() -> None:
        from stable_baselines3.common.env_checker import check_env

        check_env(make(), warn=False)

    run("signals", lambda: _signals(make()))
    run("gymnasium.check_env", gym_check)
    run("sb3.check_env", sb3_check)
    run("determinism", lambda: _determinism(make, steps, seed))
    return report
