"""The :class:`Plant` base: a ``gymnasium.Env`` with a control period, named signals and a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from ctrlbench.model import PlantModel
from ctrlbench.signals import SignalSpec, names_of

__all__ = ["Plant", "plant_dt", "signals_of"]

Obs = NDArray[np.float64]


class Plant(gym.Env[Obs, NDArray[np.float64]]):
    """A controllable physical system.

    Subclasses set ``dt``, call :meth:`set_signals` (which builds both gymnasium spaces from the
    signal bounds, so bounds are written once), and implement :meth:`reset` and :meth:`_step`.
    :meth:`step` validates the action (shape, finite, within bounds) before it can reach a
    solver, then calls :meth:`_step`. ``plants/README.md`` walks through one.

    Reference (set-point) signals are part of the observation: a reference's
    :class:`~ctrlbench.signals.SignalSpec` names the signal it ``tracks``.

    Attributes
    ----------
    dt:
        Control period (seconds, or the model's time unit).
    observation_signals:
        One :class:`SignalSpec` per observation entry, in order.
    action_signals:
        One :class:`SignalSpec` per action entry, in order.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012
    dt: float
    observation_signals: tuple[SignalSpec, ...]
    action_signals: tuple[SignalSpec, ...]
    #: Relative tolerance on action bounds before an action is rejected as out of range.
    action_tolerance: float = 1e-6
    #: Options this plant recommends per controller name, e.g. ``{"lqr": {"reference_tau": 0.3}}``;
    #: :func:`ctrlbench.make_controller` applies them unless the caller overrides them.
    controller_defaults: dict[str, dict[str, Any]] = {}  # noqa: RUF012

    def set_signals(self, observation_signals: Sequence[SignalSpec],
                    action_signals: Sequence[SignalSpec], *, observation_margin: float = 1.0
                    ) -> None:
        """Declare the signals and build ``observation_space``/``action_space`` from them.

        Parameters
        ----------
        observation_signals, action_signals:
            One :class:`SignalSpec` per entry, in order; names must be unique per group.
        observation_margin:
            The observation space's bounds are the signals' bounds times this (>= 1), for plants
            whose terminating step can land past a limit; the signals keep the limits.
        """
        obs, act = tuple(observation_signals), tuple(action_signals)
        for group, specs in (("observation", obs), ("action", act)):
            names = names_of(specs)
            if not specs or len(set(names)) != len(names):
                raise ValueError(f"{group} signals must be non-empty and unique, got {names}")
        if not (np.isfinite(observation_margin) and observation_margin >= 1.0):
            raise ValueError(f"observation_margin must be >= 1, got {observation_margin!r}")
        self.observation_signals, self.action_signals = obs, act
        self.observation_space = gym.spaces.Box(
            np.array([s.low for s in obs]) * observation_margin,
            np.array([s.high for s in obs]) * observation_margin, dtype=np.float64)
        self.action_space = gym.spaces.Box(
            np.array([s.low for s in act]), np.array([s.high for s in act]), dtype=np.float64)

    def model(self) -> PlantModel:
        """The plant's equations for model-based controllers.

        Raises
        ------
        NotImplementedError
            When the plant family provides no model.
        """
        raise NotImplementedError(f"{type(self).__name__} provides no model()")

    def step(self, action: Any) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        """Validate ``action`` and advance one control period."""
        return self._step(self.validate_action(action))

    def _step(
        self, action: NDArray[np.float64]
    ) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        raise NotImplementedError

    def validate_action(self, action: Any) -> NDArray[np.float64]:
        """Return ``action`` as a float array, or raise ``ValueError`` naming what is wrong.

        One vectorised comparison on the hot path (NaN fails it too); the detailed diagnosis
        only runs for a bad action.
        """
        a = np.asarray(action, dtype=np.float64)
        space = self.action_space
        cache = self.__dict__.get("_action_bounds")
        if cache is None or cache[0] is not space:
            cache = self._cache_bounds()
        _, low, high, lo_tol, hi_tol = cache
        if a.shape == low.shape and (a >= lo_tol).all() and (a <= hi_tol).all():
            return np.minimum(np.maximum(a, low), high)
        return self._diagnose(a, low, high, lo_tol, hi_tol)

    def _cache_bounds(self) -> tuple[Any, ...]:
        space = self.action_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"ctrlbench plants need a Box action space, got {space}")
        low, high = space.low.astype(np.float64), space.high.astype(np.float64)
        tol = self.action_tolerance * np.maximum(1.0, np.maximum(np.abs(low), np.abs(high)))
        cache = (space, low, high, low - tol, high + tol)
        self.__dict__["_action_bounds"] = cache
        return cache

    def _diagnose(self, a: NDArray[np.float64], low: NDArray[np.float64],
                  high: NDArray[np.float64], lo_tol: NDArray[np.float64],
                  hi_tol: NDArray[np.float64]) -> NDArray[np.float64]:
        names = names_of(self.action_signals)
        if a.shape != low.shape:
            if a.size != low.size:
                raise ValueError(f"action has shape {a.shape}, expected {low.shape} ({names})")
            a = a.reshape(low.shape)
        if not np.all(np.isfinite(a)):
            bad = [n for n, v in zip(names, a.ravel()) if not np.isfinite(v)]
            raise ValueError(f"non-finite action {a.tolist()} (bad entries: {bad})")
        if np.any(a < lo_tol) or np.any(a > hi_tol):
            bad = [
                f"{n}={v:g} not in [{lo:g}, {hi:g}]"
                for n, v, lo, hi in zip(names, a.ravel(), low.ravel(), high.ravel())
                if v < lo or v > hi
            ]
            raise ValueError(f"action out of range: {', '.join(bad)}")
        return np.minimum(np.maximum(a, low), high)


def signals_of(env: gym.Env[Any, Any]) -> tuple[tuple[SignalSpec, ...], tuple[SignalSpec, ...]]:
    """``(observation_signals, action_signals)`` of ``env`` or generic ones for a plain env.

    Looks through wrappers, so a wrapper that changes the observation layout can declare its own
    ``observation_signals``.
    """

    def get(name: str) -> tuple[SignalSpec, ...] | None:
        try:
            value = env.get_wrapper_attr(name)
        except AttributeError:
            return None
        return tuple(value) if value is not None else None

    obs = get("observation_signals")
    act = get("action_signals")
    if obs is None:
        n = int(np.prod(env.observation_space.shape or (1,)))
        obs = tuple(SignalSpec(f"obs_{i}") for i in range(n))
    if act is None:
        n = int(np.prod(env.action_space.shape or (1,)))
        act = tuple(SignalSpec(f"act_{i}") for i in range(n))
    return obs, act


def plant_dt(env: gym.Env[Any, Any]) -> float:
    """The control period of ``env`` (through wrappers); raises instead of guessing.

    Raises
    ------
    AttributeError
        When neither the env nor a wrapper declares ``dt``.
    ValueError
        When ``dt`` is not a positive finite number.
    """
    try:
        dt = env.get_wrapper_attr("dt")
    except AttributeError:
        raise AttributeError(
            f"{type(env.unwrapped).__name__} declares no control period 'dt'; ctrlbench plants "
            "set it (a plain gymnasium env needs a wrapper that does)"
        ) from None
    if isinstance(dt, bool) or not isinstance(dt, int | float) or not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"plant dt must be a positive finite number, got {dt!r}")
    return float(dt)
