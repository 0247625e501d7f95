"""``LaserPulseVector``: N laser pulses stepped in one batched pass (``gymnasium.make_vec``)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from ctrlbench.plant import ActionError, as_real_action
from plants.laser.env import ACTIONS, SETTINGS, laser_reward, pulse_model, start_settings
from plants.laser.model import denormalize
from plants.laser.options import LaserPulseOptions

__all__ = ["LaserPulseVector"]

Arr = NDArray[np.float64]


class LaserPulseVector(VectorEnv[Arr, Arr, Arr]):
    """``num_envs`` independent :class:`~plants.laser.env.LaserPulse` episodes, one batched
    forward pass of :class:`~plants.laser.model.PulseModel` per step.

    Same observation, action, reward, start and end as the single plant; episodes truncate
    after ``max_episode_steps`` (50, from the registration). An ended episode is reset in the
    same step (``autoreset_mode`` ``SAME_STEP``): the returned observation is the new start and
    ``infos["final_obs"]`` / ``infos["final_info"]`` hold the last one. ``infos`` carries
    ``fwhm_ps``, ``peak_ratio`` and ``evaluations`` (this episode's) per env, as arrays.
    ``evaluations`` (attribute) counts every pulse computed. The whole batch is seeded from
    ``reset(seed=...)`` (one generator), so a run is deterministic per seed, but env ``i`` of a
    batch does not replay the single plant seeded alike.

    Parameters
    ----------
    num_envs:
        Pulses per batch.
    max_episode_steps:
        Steps before truncation.
    options:
        :class:`~plants.laser.options.LaserPulseOptions`.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}  # noqa: RUF012

    def __init__(self, num_envs: int = 1, max_episode_steps: int = 50, **options: Any) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if not isinstance(max_episode_steps, int) or max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be a positive integer, got "
                             f"{max_episode_steps!r}")
        self.options = LaserPulseOptions.build(options, what="plant 'LaserPulse-v0'")
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.single_observation_space = gym.spaces.Box(
            np.array([s.low for s in SETTINGS]), np.array([s.high for s in SETTINGS]),
            dtype=np.float64)
        self.single_action_space = gym.spaces.Box(
            np.array([s.low for s in ACTIONS]), np.array([s.high for s in ACTIONS]),
            dtype=np.float64)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.pulse_model = pulse_model(self.options.b_integral)
        self.evaluations = 0
        self._u = np.tile(self.pulse_model.linear_compensation(), (num_envs, 1))
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._episode_evals = np.zeros(num_envs, dtype=np.int64)
        self._rng = np.random.default_rng()
        self._started = False

    def _measure(self, u: Arr) -> tuple[Arr, Arr]:
        pulse = self.pulse_model.forward_normalized(u)
        self.evaluations += len(u)
        return np.asarray(pulse.fwhm), np.asarray(pulse.peak_ratio)

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[Arr, dict[str, Any]]:
        """Start every pulse near the compressor-matching setting."""
        if seed is not None:
            first = seed[0] if isinstance(seed, list) else seed
            self._rng = np.random.default_rng(first)
        self._u = start_settings(self._rng, self.pulse_model, self.options.reset_noise,
                                 self.num_envs)
        self._steps[:] = 0
        fwhm, ratio = self._measure(self._u)
        self._episode_evals[:] = 1
        self._started = True
        return self._u.copy(), {"fwhm_ps": fwhm, "peak_ratio": ratio,
                                "evaluations": self._episode_evals.copy()}

    def _check(self, actions: Any) -> Arr:
        names = [s.name for s in ACTIONS]
        shape = (self.num_envs, len(ACTIONS))
        arr = np.asarray(as_real_action(actions, shape, names), dtype=np.float64)
        if arr.shape != shape:
            raise ActionError(f"actions must have shape {shape} ({', '.join(names)} per env), "
                              f"got {arr.shape}")
        low = np.array([s.low for s in ACTIONS])
        high = np.array([s.high for s in ACTIONS])
        bad = ~np.isfinite(arr) | (arr < low) | (arr > high)
        if bad.any():
            env, col = (int(i) for i in np.argwhere(bad)[0])
            raise ActionError(f"action of env {env} out of range or not finite: "
                              f"{names[col]}={float(arr[env, col])!r} not in "
                              f"[{low[col]}, {high[col]}]")
        return arr

    def step(self, actions: Any) -> tuple[Arr, Arr, Any, Any, dict[str, Any]]:
        """Move every setting, one batched pass; ended episodes restart at once."""
        if not self._started:
            raise RuntimeError("LaserPulseVector.step() before reset()")
        a = self._check(actions)
        self._u = np.clip(self._u + a, 0.0, 1.0)
        self._steps += 1
        fwhm, ratio = self._measure(self._u)
        self._episode_evals += 1
        reward = np.asarray(laser_reward(fwhm, ratio, self.options), dtype=np.float64)
        terminated = fwhm >= self.options.max_fwhm_ps
        truncated = (self._steps >= self.max_episode_steps) & ~terminated
        infos: dict[str, Any] = {"fwhm_ps": fwhm, "peak_ratio": ratio,
                                 "evaluations": self._episode_evals.copy()}
        done = terminated | truncated
        obs = self._u.copy()
        if done.any():
            idx = np.flatnonzero(done)
            infos["final_obs"] = obs.copy()
            infos["final_info"] = {"fwhm_ps": fwhm.copy(), "peak_ratio": ratio.copy(),
                                   "settings_ps": denormalize(obs),
                                   "evaluations": self._episode_evals.copy(), "_fwhm_ps": done}
            infos["_final_obs"] = infos["_final_info"] = done
            fresh = start_settings(self._rng, self.pulse_model, self.options.reset_noise,
                                   len(idx))
            self._u[idx] = fresh
            obs[idx] = fresh
            f_new, r_new = self._measure(fresh)
            infos["fwhm_ps"][idx], infos["peak_ratio"][idx] = f_new, r_new
            self._steps[idx] = 0
            self._episode_evals[idx] = 1
            infos["evaluations"][idx] = 1
        return obs, reward, terminated, truncated, infos
