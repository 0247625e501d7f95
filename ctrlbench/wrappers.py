"""Cross-cutting plant behaviour as gymnasium wrappers that keep signal names and units.

- :class:`ReferenceInObs` appends a reference signal (a function of time) to the observation.
- :class:`MeasurementNoise` adds seeded Gaussian noise to measured (non-reference) signals.
- :class:`ActuatorDelay` delays actions by a whole number of control periods.
- :class:`RescaleAction` maps a normalised action box (default ``[-1, 1]``) to the plant's bounds.
- :class:`ScaleObservation` maps the finite observation bounds to ``[-1, 1]`` (for learning).
- :class:`PlantView` (what :func:`ctrlbench.make_plant` returns) reads ``dt``, the signals and
  ``model()`` through gymnasium's wrappers, which since gymnasium 1.0 forward no attributes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrlbench.model import PlantModel
from ctrlbench.plant import EpisodeEndedError, plant_dt, signals_of
from ctrlbench.signals import SignalSpec, index_of

__all__ = ["ActuatorDelay", "MeasurementNoise", "PlantView", "ReferenceInObs", "RescaleAction",
           "ScaleObservation", "box_scaling"]

Obs = NDArray[np.float64]
StepResult = tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]


class PlantView(gym.Wrapper[Any, Any, Any, Any]):
    """A transparent wrapper that exposes the plant attributes of the env it wraps.

    ``make_plant(...).observation_signals`` and ``.dt`` work although gymnasium's ``TimeLimit``
    and ``OrderEnforcing`` sit in between; it changes no observation, action or reward.

    It also makes every plant behave alike at the end of an episode: once a step returns
    ``terminated`` or ``truncated`` (including the time limit), the next ``step`` raises
    :class:`~ctrlbench.plant.EpisodeEndedError` until ``reset``.
    """

    _ended: str | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the plant and start a new episode."""
        self._ended = None
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> StepResult:
        """Step the plant; refuses to step an episode that has ended."""
        if self._ended is not None:
            name = getattr(self.env.spec, "id", None) or type(self.env.unwrapped).__name__
            raise EpisodeEndedError(
                f"{name}: the episode was {self._ended}; call reset() before step()")
        out = self.env.step(action)
        if out[2] or out[3]:
            self._ended = "terminated" if out[2] else "truncated"
        return out

    @property
    def dt(self) -> float:
        """Control period of the plant (:func:`ctrlbench.plant.plant_dt`)."""
        return plant_dt(self.env)

    @property
    def observation_signals(self) -> tuple[SignalSpec, ...]:
        """Observation signals, through the wrappers."""
        return signals_of(self.env)[0]

    @property
    def action_signals(self) -> tuple[SignalSpec, ...]:
        """Action signals, through the wrappers."""
        return signals_of(self.env)[1]

    @property
    def controller_defaults(self) -> dict[str, dict[str, Any]]:
        """Options the plant recommends per controller."""
        return dict(getattr(self.env.unwrapped, "controller_defaults", {}))

    def model(self) -> PlantModel:
        """The plant's model (``NotImplementedError`` when it has none)."""
        fn = self.env.get_wrapper_attr("model")
        return fn()  # type: ignore[no-any-return]


class ReferenceInObs(gym.ObservationWrapper[Obs, Any, Any]):
    """Append ``reference(t)`` to the observation as signals that track plant outputs.

    Parameters
    ----------
    env:
        The plant.
    reference:
        ``reference(t) -> array`` of one value per tracked signal (``t`` in plant time units).
    tracks:
        Names of the observed signals the references are set-points for.
    names:
        Names of the new reference signals; default ``<tracked>_ref``. A name already in the
        observation raises ``ValueError``.
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        reference: Callable[[float], ArrayLike],
        tracks: Sequence[str],
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(env)
        obs_signals, self.action_signals = signals_of(env)
        base = {s.name: s for s in obs_signals}
        for name in tracks:
            index_of(obs_signals, name)  # raises with the valid names
        new_names = list(names) if names is not None else [f"{n}_ref" for n in tracks]
        clash = sorted(set(new_names) & set(base)) or len(set(new_names)) < len(new_names)
        if clash or len(new_names) != len(tracks):
            raise ValueError(
                f"reference names {new_names} must be unique, one per tracked signal, and not "
                f"already observed ({sorted(base)})"
            )
        refs = tuple(
            SignalSpec(r, base[n].unit, base[n].low, base[n].high, f"reference for {n}", tracks=n)
            for r, n in zip(new_names, tracks)
        )
        self.observation_signals = tuple(obs_signals) + refs
        self._reference = reference
        self._n = len(tracks)
        self._ref_low = np.array([s.low for s in refs])
        self._ref_high = np.array([s.high for s in refs])
        self._dt = plant_dt(env)
        self._k = 0
        space = env.observation_space
        assert isinstance(space, gym.spaces.Box)
        low = np.concatenate([space.low.ravel(), [s.low for s in refs]])
        high = np.concatenate([space.high.ravel(), [s.high for s in refs]])
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float64)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        """Reset the plant and the reference clock."""
        self._k = 0
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> StepResult:
        """Step the plant and advance the reference clock."""
        self._k += 1
        return super().step(action)

    def observation(self, observation: Any) -> Obs:
        """Observation with the references appended.

        Raises ``ValueError`` when the reference leaves its signal's bounds or is not finite.
        """
        t = self._k * self._dt
        ref = np.asarray(self._reference(t), dtype=np.float64).reshape(self._n)
        if not ((ref >= self._ref_low).all() and (ref <= self._ref_high).all()):
            bad = [f"{s.name}={v:g} not in [{s.low:g}, {s.high:g}]"
                   for s, v in zip(self.observation_signals[-self._n:], ref)
                   if not s.low <= v <= s.high]
            raise ValueError(f"reference at t = {t:g} outside its signal's bounds: "
                             f"{', '.join(bad)}")
        return np.concatenate([np.asarray(observation, dtype=np.float64).ravel(), ref])


class MeasurementNoise(gym.ObservationWrapper[Obs, Any, Any]):
    """Add zero-mean Gaussian noise to measured signals (references stay exact).

    Parameters
    ----------
    env:
        The plant.
    std:
        Standard deviation, one value for every measured signal or a mapping name -> std.
    """

    def __init__(self, env: gym.Env[Any, Any], std: float | Mapping[str, float]) -> None:
        super().__init__(env)
        self.observation_signals, self.action_signals = signals_of(env)
        sig = np.zeros(len(self.observation_signals))
        if isinstance(std, Mapping):
            for name, value in std.items():
                sig[index_of(self.observation_signals, name)] = value
        else:
            sig[:] = std
            sig[[s.tracks is not None for s in self.observation_signals]] = 0.0
        if np.any(sig < 0) or not np.all(np.isfinite(sig)):
            raise ValueError(f"noise std must be finite and >= 0, got {sig.tolist()}")
        self._std = sig
        self._rng = np.random.default_rng()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        """Reset the plant; a given ``seed`` re-seeds the noise stream, else it continues."""
        if seed is not None:
            self._rng = np.random.default_rng([seed, 0x5EED])
        return super().reset(seed=seed, options=options)

    def observation(self, observation: Any) -> Obs:
        """The observation plus noise."""
        obs = np.asarray(observation, dtype=np.float64)
        return obs + self._std * self._rng.standard_normal(obs.shape)


class ActuatorDelay(gym.Wrapper[Any, Any, Any, Any]):
    """Apply each action ``delay`` control periods late; ``initial`` is applied meanwhile.

    The action is validated by the plant when it is applied, and checked for finiteness when it
    enters the delay line.
    """

    def __init__(
        self, env: gym.Env[Any, Any], delay: int, initial: ArrayLike | None = None
    ) -> None:
        super().__init__(env)
        if delay < 0:
            raise ValueError(f"delay must be >= 0 control periods, got {delay}")
        self.observation_signals, self.action_signals = signals_of(env)
        shape = env.action_space.shape or ()
        self._initial = np.zeros(shape) if initial is None else np.asarray(initial, dtype=float)
        if self._initial.shape != shape or not np.all(np.isfinite(self._initial)):
            raise ValueError(
                f"initial action must be finite with shape {shape}, got {self._initial.tolist()}"
            )
        self._delay = delay
        self._queue: deque[NDArray[np.float64]] = deque()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the plant and fill the delay line with ``initial``."""
        self._queue = deque([self._initial.copy() for _ in range(self._delay)])
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> StepResult:
        """Queue ``action`` and apply the oldest one."""
        a = np.asarray(action, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"non-finite action {a.tolist()}")
        self._queue.append(a)
        return super().step(self._queue.popleft())


class RescaleAction(gym.ActionWrapper[Any, Any, Any]):
    """Expose a normalised action box ``[low, high]`` mapped affinely onto the plant's bounds."""

    def __init__(self, env: gym.Env[Any, Any], low: float = -1.0, high: float = 1.0) -> None:
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, gym.spaces.Box) or not (
            np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))
        ):
            raise ValueError("RescaleAction needs a bounded Box action space")
        if not low < high:
            raise ValueError(f"need low < high, got {low}, {high}")
        self.observation_signals, base = signals_of(env)
        self.action_signals = tuple(
            replace(
                s,
                name=f"{s.name}_norm",
                unit="1",
                low=low,
                high=high,
                description=f"{s.name} normalised to [{low}, {high}]",
            )
            for s in base
        )
        self._src = (low, high)
        self._dst = (space.low.astype(float), space.high.astype(float))
        self.action_space = gym.spaces.Box(low, high, shape=space.shape, dtype=np.float64)

    def action(self, action: Any) -> NDArray[np.float64]:
        """Map the normalised action onto the plant's bounds."""
        a = np.asarray(action, dtype=np.float64)
        lo, hi = self._src
        return self._dst[0] + (a - lo) * (self._dst[1] - self._dst[0]) / (hi - lo)


def box_scaling(space: gym.spaces.Box) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(offset, scale)`` with ``(obs - offset) * scale`` in ``[-1, 1]`` on the box's finite
    dimensions; a dimension with an infinite bound is passed through (offset 0, scale 1)."""
    low, high = space.low.astype(float).ravel(), space.high.astype(float).ravel()
    finite = np.isfinite(low) & np.isfinite(high) & (high > low)
    offset = np.where(finite, 0.5 * (np.where(finite, low, 0.0) + np.where(finite, high, 0.0)),
                      0.0)  # (-inf + inf would warn "invalid value")
    scale = np.where(finite, 2.0 / np.where(finite, high - low, 1.0), 1.0)
    return offset.reshape(space.shape), scale.reshape(space.shape)


class ScaleObservation(gym.ObservationWrapper[Any, Any, Any]):
    """Scale each finite observation bound to ``[-1, 1]`` (float32, for learning agents).

    Signal names and units are kept (the values are dimensionless); dimensions with an infinite
    bound pass through unchanged. ``offset`` and ``scale`` give the map, ``(obs - offset) *
    scale``, so a trained policy can apply it outside the wrapper.
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise ValueError(f"ScaleObservation needs a Box observation space, got {space}")
        self.offset, self.scale = box_scaling(space)
        low = ((space.low - self.offset) * self.scale).astype(np.float32)
        high = ((space.high - self.offset) * self.scale).astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: Any) -> NDArray[np.float32]:
        """The scaled observation."""
        obs = (np.asarray(observation, dtype=np.float64) - self.offset) * self.scale
        return obs.astype(np.float32)
