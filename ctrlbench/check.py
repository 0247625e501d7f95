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
        try:
            trajs.append(
                simulate(env, _SeededActions(env.action_space, seed), steps=steps, seed=seed)
            )
            # the same instance, reset with the same seed again, must repeat itself too
            trajs.append(
                simulate(env, _SeededActions(env.action_space, seed), steps=steps, seed=seed)
            )
        finally:
            env.close()
    first = trajs[0]
    for other in trajs[1:]:
        for name in ("observations", "rewards"):
            a, b = getattr(first, name), getattr(other, name)
            if not np.all(np.isfinite(a)):
                raise AssertionError(f"non-finite {name} under seeded random actions")
            if a.shape != b.shape or not np.array_equal(a, b):
                raise AssertionError(f"same seed {seed} gave different {name}")


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


def check_plant(
    plant_id: str | Callable[[], gym.Env[Any, Any]], steps: int = 200, seed: int = 0,
    **kwargs: Any,
) -> CheckReport:
    """Run every conformance check on a plant and report each outcome.

    ``plant_id`` is a registered id (``kwargs`` are its options) or a zero-argument factory.

    Checks: declared signals match the spaces; Gymnasium's ``check_env``; Stable-Baselines3's
    ``check_env`` (SB3 comes with the ``rl`` extra; without it this check fails with the
    ``ImportError``); the same seed gives an identical, finite trajectory under a seeded random
    action sequence of ``steps`` steps, from two fresh instances and from a second reset of one.
    """

    def make() -> gym.Env[Any, Any]:
        if callable(plant_id):
            return plant_id()
        return make_plant(plant_id, **kwargs)

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if callable(plant_id) and kwargs:
        raise TypeError(f"options {sorted(kwargs)} need a registered plant id, not a factory")
    name = plant_id if isinstance(plant_id, str) else getattr(plant_id, "__name__", "plant")
    make().close()  # an unknown id or option raises here, listing the valid ones
    report = CheckReport(name)

    def run(name: str, fn: Callable[[], None]) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn()
            report.results[name] = None
        except Exception as exc:
            report.results[name] = f"{type(exc).__name__}: {exc}"

    def with_env(fn: Callable[[gym.Env[Any, Any]], Any]) -> Callable[[], None]:
        def go() -> None:
            env = make()
            try:
                fn(env)
            finally:
                env.close()

        return go

    def gym_check(env: gym.Env[Any, Any]) -> None:
        from gymnasium.utils.env_checker import check_env

        check_env(env.unwrapped, skip_render_check=True)

    def sb3_check(env: gym.Env[Any, Any]) -> None:
        from stable_baselines3.common.env_checker import check_env

        check_env(env, warn=False)

    run("signals", with_env(_signals))
    run("gymnasium.check_env", with_env(gym_check))
    run("sb3.check_env", with_env(sb3_check))
    run("determinism", lambda: _determinism(make, steps, seed))
    return report
