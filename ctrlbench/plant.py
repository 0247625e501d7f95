"""The :class:`Plant` base: a ``gymnasium.Env`` with a control period, named signals and a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from ctrlbench.model import PlantModel
from ctrlbench.signals import SignalSpec, names_of

__all__ = ["ActionError", "EpisodeEndedError", "Plant", "as_real_action", "plant_dt", "signals_of"]

Obs = NDArray[np.float64]

_REAL_KINDS = "fiu"


class ActionError(TypeError, ValueError):
    """An action that is not a finite real array of the declared shape within the bounds."""


class EpisodeEndedError(RuntimeError):
    """``step()`` was called after the episode ended, without ``reset()``."""


def as_real_action(action: Any, shape: tuple[int, ...], names: Sequence[str]) -> NDArray[Any]:
    """``action`` as a real numeric array, or :class:`ActionError` saying what it is instead.

    Accepts numpy arrays of integer or float dtype and (nested) lists/tuples of ints and floats;
    rejects strings, booleans, complex numbers, ``None`` and objects. The shape is not checked
    here.
    """
    if type(action) is np.ndarray and action.dtype.kind in _REAL_KINDS:
        return action
    want = f"a real array of shape {shape} ({', '.join(names)})"
    if isinstance(action, str | bytes):
        raise ActionError(f"action must be {want}, got the string {action!r}")
    if isinstance(action, bool | np.bool_):
        raise ActionError(f"action must be {want}, got the boolean {action!r}")
    if isinstance(action, list | tuple):
        try:
            items = np.asarray(action, dtype=object).ravel()
        except ValueError:
            raise ActionError(f"action must be {want}, got the ragged {action!r}") from None
        bad = [x for x in items if isinstance(x, bool | np.bool_ | str | bytes | complex)
               or x is None]
        if bad:
            raise ActionError(f"action must be {want}, got {action!r} (bad entries: {bad})")
    try:
        arr = np.asarray(action)
    except (TypeError, ValueError):
        raise ActionError(f"action must be {want}, got {action!r}") from None
    kind = arr.dtype.kind
    if kind == "b":
        raise ActionError(f"action must be {want}, got a boolean array {arr.tolist()}")
    if kind == "c":
        raise ActionError(f"action must be {want}, got complex values {arr.tolist()}")
    if kind not in _REAL_KINDS:
        raise ActionError(f"action must be {want}, got {action!r} (dtype {arr.dtype})")
    return arr


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
    #: Whether :meth:`step` accepts a batch of one (shape ``(1, *action_shape)``) as an action.
    accepts_batch_of_one: bool = False
    _ended: str | None = None

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

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        """Seed ``np_random`` (subclasses call ``super().reset(seed=seed)`` first) and start a
        new episode."""
        super().reset(seed=seed, options=options)
        self._ended = None
        return None  # type: ignore[return-value]  # subclasses return the observation

    def step(self, action: Any) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        """Validate ``action`` and advance one control period.

        Raises
        ------
        ActionError
            ``action`` is not a finite real array of the declared shape within the bounds.
        EpisodeEndedError
            The episode terminated and :meth:`reset` has not been called since.
        """
        if self._ended is not None:
            self._raise_ended()
        out = self._step(self.validate_action(action))
        if out[2]:
            self._ended = "terminated"
        return out

    def _raise_ended(self) -> None:
        raise EpisodeEndedError(
            f"{type(self).__name__}: the episode has {self._ended}; call reset() before step()"
        )

    def _step(
        self, action: NDArray[np.float64]
    ) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        raise NotImplementedError

    def validate_action(self, action: Any) -> NDArray[np.float64]:
        """Return ``action`` as a float array, or raise :class:`ActionError` naming what is wrong
        (not real numbers, wrong shape, non-finite, out of range).

        One vectorised comparison on the hot path (NaN fails it too); the detailed diagnosis
        only runs for a bad action.
        """
        space = self.action_space
        cache = self.__dict__.get("_action_bounds")
        if cache is None or cache[0] is not space:
            cache = self._cache_bounds()
        _, low, high, lo_tol, hi_tol = cache
        if type(action) is np.ndarray and action.dtype.kind in _REAL_KINDS:
            a = action.astype(np.float64, copy=False)
        else:
            a = as_real_action(action, low.shape, names_of(self.action_signals)).astype(
                np.float64, copy=False)
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
            if not (self.accepts_batch_of_one and a.shape == (1, *low.shape)):
                batch = " (this plant takes no batch of one)" if a.shape == (1, *low.shape) else ""
                raise ActionError(
                    f"action has shape {a.shape}, expected {low.shape} ({', '.join(names)})"
                    f"{batch}")
            a = a.reshape(low.shape)
            if (a >= lo_tol).all() and (a <= hi_tol).all():
                return np.minimum(np.maximum(a, low), high)
        if not np.all(np.isfinite(a)):
            bad = [n for n, v in zip(names, a.ravel()) if not np.isfinite(v)]
            raise ActionError(f"non-finite action {a.tolist()} (bad entries: {bad})")
        if np.any(a < lo_tol) or np.any(a > hi_tol):
            bad = [
                f"{n}={v:g} not in [{lo:g}, {hi:g}]"
                for n, v, lo, hi in zip(names, a.ravel(), low.ravel(), high.ravel())
                if v < lo or v > hi
            ]
            raise ActionError(f"action out of range: {', '.join(bad)}")
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
