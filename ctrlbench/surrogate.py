"""A gymnasium env driven by a fitted discrete-time dynamics model (a surrogate of a real plant).

Model-based RL (SINDy-RL, Zolman et al. 2024; MODELS.md section 6) trains an agent in an
environment whose step is a *fitted* model ``x_(k+1) = f(x_k, u_k)`` instead of the real plant.
:class:`SurrogateEnv` is that environment for any model object with ``predict(x, u) -> x_next``
(one control period; an identified SINDy ensemble, a neural network, a linearization, ...).

The surrogate copies the real plant's observation and action spaces (so an SB3 agent trained in
it can be run on the real plant with ``agent.set_env``), validates actions as the ctrlbench plants
do (:class:`~ctrlbench.plant.ActionError`, a ``ValueError``), and ends an episode where the model
is not to be trusted: a non-finite prediction or reward, or a state that leaves the observation
box by more than ``termination_margin`` of the box's width.

Only numpy and gymnasium are imported here.

>>> import numpy as np
>>> from gymnasium.spaces import Box
>>> class Decay:
...     def predict(self, x, u):
...         return 0.9 * np.asarray(x) + 0.1 * np.asarray(u)
>>> env = SurrogateEnv(Decay(), Box(-1.0, 1.0, (1,)), Box(-1.0, 1.0, (1,)),
...                    reward=lambda x, u, xn: -float(xn[0] ** 2),
...                    initial=lambda rng: rng.uniform(-1.0, 1.0, 1), max_steps=50)
>>> obs, _ = env.reset(seed=0)
>>> obs, r, terminated, truncated, info = env.step(np.array([0.5], dtype=np.float32))
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, SupportsFloat

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrlbench.options import Options, option
from ctrlbench.plant import ActionError, EpisodeEndedError, as_real_action

__all__ = [
    "DynamicsModel",
    "InitialStateFn",
    "RewardFn",
    "SurrogateEnv",
    "SurrogateOptions",
    "state_sampler",
]

FloatArray = NDArray[np.float64]


class DynamicsModel(Protocol):
    """A fitted discrete-time model: the state one control period after ``x`` under ``u``."""

    def predict(self, x: FloatArray, u: FloatArray) -> ArrayLike:
        """``x_next`` for a state ``x`` of shape ``(n,)`` and an input ``u`` of shape ``(m,)``."""
        ...


RewardFn = Callable[[FloatArray, FloatArray, FloatArray], SupportsFloat]
"""``reward(x, u, x_next) -> float`` for one transition (a closed form or a fitted model)."""

InitialStateFn = Callable[[np.random.Generator], ArrayLike]
"""``initial(rng) -> x0``: an initial state drawn with the env's ``np_random``."""


@dataclass(frozen=True)
class SurrogateOptions(Options):
    """Settings of a :class:`SurrogateEnv` (validated; errors name the field and the range)."""

    max_steps: int = option(200, "steps per episode; the episode is truncated after them", ge=1)
    termination_margin: float = option(
        0.1, "how far past the observation box (fraction of each bound's width) a predicted "
        "state may land before the episode terminates; inf: never", ge=0, le=math.inf)
    termination_reward: float = option(
        0.0, "reward of a terminating step per step left in the episode (that step included)")
    action_tolerance: float = option(
        1e-6, "relative tolerance on the action bounds before an action is rejected", ge=0, le=1)


def state_sampler(states: ArrayLike) -> InitialStateFn:
    """An initial-state sampler that draws one row of ``states`` uniformly (e.g. recorded real
    initial observations).

    Raises
    ------
    ValueError
        ``states`` is not a non-empty 2-D array of finite numbers.
    """
    arr = np.array(states, dtype=np.float64)
    if arr.ndim != 2 or len(arr) == 0:
        raise ValueError(f"states must be a non-empty 2-D array (one state per row), got shape "
                         f"{arr.shape}")
    if not np.all(np.isfinite(arr)):
        row = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise ValueError(f"states has non-finite entries, first in row {row}: "
                         f"{arr[row].tolist()}")

    def initial(rng: np.random.Generator) -> FloatArray:
        return arr[int(rng.integers(len(arr)))].copy()

    return initial


class SurrogateEnv(gym.Env[NDArray[Any], NDArray[Any]]):
    """An episodic env whose step is a fitted model's one-period prediction.

    ====================  =======================================================================
    Observation           the model's state, in the (copied) real observation box; a prediction
                          within ``termination_margin`` past the box is clipped back into it
    Action                the (copied) real action box; shape, finiteness and bounds checked
    Reward                ``reward(x, u, x_next)`` on the float64 state, action and next state
    Starting state        ``initial(np_random)``, clipped into the observation box
    Termination           non-finite prediction or reward, or a state further than
                          ``termination_margin`` times the bound's width past a bound; the step
                          then earns ``termination_reward`` times the steps left in the episode
    Truncation            after ``max_steps`` steps
    ====================  =======================================================================

    The default ``termination_reward`` (0) is neutral; where per-step rewards are negative it
    makes a model blow-up attractive to the agent, so pass a reward at most the worst per-step
    reward (what :func:`controllers.sindy_rl.train_sindy_rl` does by default).

    A bound at infinity never terminates. For a half-infinite dimension the margin past the finite
    bound is ``termination_margin * max(1, |bound|)``. Observations are returned in the
    observation space's dtype; the state itself is kept in float64.

    Parameters
    ----------
    model:
        Any object with ``predict(x, u) -> x_next`` (shapes ``(n,)``, ``(m,)`` -> ``(n,)``).
    observation_space, action_space:
        1-D ``Box`` spaces, copied from the real plant (they are deep-copied here).
    reward:
        ``reward(x, u, x_next) -> float``.
    initial:
        ``initial(rng) -> x0`` of shape ``(n,)``; see :func:`state_sampler`.
    max_steps, termination_margin, termination_reward, action_tolerance:
        See :class:`SurrogateOptions`.
    action_names:
        Names of the action entries for error messages (default ``u0, u1, ...``).

    Attributes
    ----------
    options:
        The validated :class:`SurrogateOptions`.
    total_steps:
        Steps taken since construction (over all episodes).

    Raises
    ------
    OptionError
        A setting out of range.
    TypeError
        A space that is not a 1-D ``Box``, or a ``model`` without ``predict``.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, model: DynamicsModel, observation_space: gym.spaces.Box,
                 action_space: gym.spaces.Box, reward: RewardFn, initial: InitialStateFn, *,
                 max_steps: int = 200, termination_margin: float = 0.1,
                 termination_reward: float = 0.0, action_tolerance: float = 1e-6,
                 action_names: Sequence[str] | None = None) -> None:
        self.options = SurrogateOptions(
            max_steps=max_steps, termination_margin=termination_margin,
            termination_reward=termination_reward, action_tolerance=action_tolerance)
        for name, space in (("observation_space", observation_space),
                            ("action_space", action_space)):
            if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
                raise TypeError(f"SurrogateEnv needs a 1-D Box {name}, got {space!r}")
        if not callable(getattr(model, "predict", None)):
            raise TypeError(f"model must have a predict(x, u) method, got {type(model).__name__}")
        if not (callable(reward) and callable(initial)):
            raise TypeError("reward and initial must be callables")
        self.model, self.reward_fn, self.initial_fn = model, reward, initial
        self.observation_space = copy.deepcopy(observation_space)
        self.action_space = copy.deepcopy(action_space)
        self.render_mode = None
        m = action_space.shape[0]
        self.action_names = (tuple(action_names) if action_names is not None
                             else tuple(f"u{j}" for j in range(m)))
        if len(self.action_names) != m:
            raise ValueError(f"action_names has {len(self.action_names)} names for {m} actions")
        self._obs_low = observation_space.low.astype(np.float64)
        self._obs_high = observation_space.high.astype(np.float64)
        self._stop_low, self._stop_high = _stop_bounds(
            self._obs_low, self._obs_high, self.options.termination_margin)
        self._act_low = action_space.low.astype(np.float64)
        self._act_high = action_space.high.astype(np.float64)
        tol = action_tolerance * np.maximum(1.0, np.maximum(np.abs(self._act_low),
                                                            np.abs(self._act_high)))
        self._act_lo_tol = self._act_low - tol
        self._act_hi_tol = self._act_high + tol
        self._x: FloatArray | None = None
        self._t = 0
        self._ended: str | None = None
        self.total_steps = 0

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[NDArray[Any], dict[str, Any]]:
        """Seed ``np_random`` (when ``seed`` is given) and draw a start from ``initial``.

        Raises
        ------
        ValueError
            ``initial`` returned a state of the wrong shape or with non-finite entries.
        """
        super().reset(seed=seed, options=options)
        x0 = np.asarray(self.initial_fn(self.np_random), dtype=np.float64)
        n = self._obs_low.shape[0]
        if x0.shape != (n,) or not np.all(np.isfinite(x0)):
            raise ValueError(f"initial(rng) must return a finite state of shape ({n},), got "
                             f"{x0.tolist()} of shape {x0.shape}")
        self._x = np.clip(x0, self._obs_low, self._obs_high)
        self._t = 0
        self._ended = None
        return self._observation(self._x), {"steps": 0}

    def step(self, action: Any) -> tuple[NDArray[Any], SupportsFloat, bool, bool, dict[str, Any]]:
        """Validate ``action`` and advance the model one control period.

        Raises
        ------
        ActionError
            ``action`` is not a finite real array of the action shape within the bounds (a
            ``ValueError`` naming the bad value and the valid range).
        EpisodeEndedError
            The episode ended (or never started) and :meth:`reset` has not been called since.
        RuntimeError
            The model returned a prediction of the wrong size.
        """
        if self._x is None or self._ended is not None:
            raise EpisodeEndedError(
                f"SurrogateEnv: the episode has {self._ended or 'not started'}; call reset() "
                f"before step()")
        u = self.validate_action(action)
        x = self._x
        pred = np.asarray(self.model.predict(x, u), dtype=np.float64)
        if pred.size != x.size:
            raise RuntimeError(f"model.predict(x, u) returned shape {pred.shape}; expected "
                               f"({x.size},)")
        pred = pred.reshape(x.shape)
        self._t += 1
        self.total_steps += 1
        reason = None
        if not np.all(np.isfinite(pred)):
            reason = "non-finite prediction"
        elif np.any(pred < self._stop_low) or np.any(pred > self._stop_high):
            reason = "left the observation box"
        x_next = np.clip(np.where(np.isfinite(pred), pred, x), self._obs_low, self._obs_high)
        if reason is None:
            reward = float(self.reward_fn(x, u, x_next))
            if not math.isfinite(reward):
                reason = "non-finite reward"
        info: dict[str, Any] = {"steps": self._t}
        if reason is not None:
            left = self.options.max_steps - self._t + 1
            reward = self.options.termination_reward * max(left, 1)
            info["termination"] = reason
        self._x = x_next
        terminated = reason is not None
        truncated = not terminated and self._t >= self.options.max_steps
        if terminated or truncated:
            self._ended = "terminated" if terminated else "been truncated"
        return self._observation(x_next), reward, terminated, truncated, info

    # ------------------------------------------------------------------ helpers
    @property
    def state(self) -> FloatArray:
        """The current model state (float64, a copy)."""
        if self._x is None:
            raise RuntimeError("SurrogateEnv has no state before reset()")
        return self._x.copy()

    def validate_action(self, action: Any) -> FloatArray:
        """``action`` as a float64 array clipped to the bounds, or :class:`ActionError` naming
        what is wrong (not real numbers, wrong shape, non-finite, out of range)."""
        low, high = self._act_low, self._act_high
        a = as_real_action(action, low.shape, self.action_names).astype(np.float64, copy=False)
        if a.shape != low.shape:
            raise ActionError(f"action has shape {a.shape}, expected {low.shape} "
                              f"({', '.join(self.action_names)})")
        if not np.all(np.isfinite(a)):
            bad = [f"{n}={v}" for n, v in zip(self.action_names, a) if not np.isfinite(v)]
            raise ActionError(f"non-finite action {a.tolist()} (bad entries: {', '.join(bad)}); "
                              f"valid: finite values in [{_fmt(low)}, {_fmt(high)}]")
        if np.any(a < self._act_lo_tol) or np.any(a > self._act_hi_tol):
            bad = [f"{n}={v:g} not in [{lo:g}, {hi:g}]"
                   for n, v, lo, hi in zip(self.action_names, a, low, high)
                   if v < lo or v > hi]
            raise ActionError(f"action out of range: {', '.join(bad)}")
        out: FloatArray = np.minimum(np.maximum(a, low), high)
        return out

    def _observation(self, x: FloatArray) -> NDArray[Any]:
        return x.astype(self.observation_space.dtype, copy=True)


def _stop_bounds(low: FloatArray, high: FloatArray, margin: float
                 ) -> tuple[FloatArray, FloatArray]:
    """Bounds past which a predicted state terminates the episode (``-inf``/``inf``: never)."""
    if math.isinf(margin):
        return np.full_like(low, -np.inf), np.full_like(high, np.inf)
    width = high - low
    finite = np.isfinite(width)

    def scale(bound: FloatArray) -> FloatArray:
        half = np.maximum(1.0, np.where(np.isfinite(bound), np.abs(bound), 1.0))
        out: FloatArray = np.where(finite, width, half)
        return out

    stop_low = np.where(np.isfinite(low), low - margin * scale(low), -np.inf)
    stop_high = np.where(np.isfinite(high), high + margin * scale(high), np.inf)
    return stop_low, stop_high


def _fmt(v: FloatArray) -> str:
    return ", ".join(f"{x:g}" for x in v)
