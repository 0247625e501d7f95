"""The controller contract (SB3's ``predict``) and the numpy :class:`FeedbackController` base."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Controller", "FeedbackController"]


@runtime_checkable
class Controller(Protocol):
    """Anything with Stable-Baselines3's ``predict``: a trained SB3 model *is* a controller."""

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]:
        """Map an observation to ``(action, next_state)``."""
        ...


class FeedbackController(ABC):
    """Base for numpy feedback controllers (PID, LQR, RISE, MPC, ...).

    Subclasses keep their internal state in attributes, restore it in :meth:`reset`, and map one
    observation to one action in :meth:`compute`. ``dt`` comes from the plant. Controllers never
    mutate the plant.

    Parameters
    ----------
    dt:
        Control period of the plant.
    """

    #: Shape of one observation, checked by :meth:`predict` when set (``make_controller`` sets
    #: it from the plant's observation space).
    observation_shape: tuple[int, ...] | None = None

    def __init__(self, dt: float) -> None:
        if not (np.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be positive and finite, got {dt!r}")
        self.dt = float(dt)

    @abstractmethod
    def reset(self) -> None:
        """Restore the initial internal state (start of an episode)."""

    @abstractmethod
    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """One control step: observation in, action out."""

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[NDArray[np.float64], None]:
        """SB3-compatible entry point; resets on ``episode_start`` and handles a batch of one.

        Raises ``ValueError`` for an observation that is not a real array of the plant's shape.
        """
        if type(observation) is np.ndarray and observation.dtype.kind == "f":
            obs = observation
        else:
            obs = self._as_observation(observation)
        shape = self.observation_shape
        if shape is not None and obs.shape != shape and obs.shape != (1, *shape):
            raise ValueError(
                f"{type(self).__name__}: observation has shape {obs.shape}, expected {shape}"
            )
        if episode_start is not None and bool(np.any(episode_start)):
            self.reset()
        if obs.ndim == 2:
            if obs.shape[0] != 1:
                raise ValueError(
                    f"{type(self).__name__} controls one env; got batch {obs.shape[0]}"
                )
            return self.compute(obs[0])[None, :], None
        return self.compute(obs), None

    def _as_observation(self, observation: Any) -> NDArray[np.float64]:
        arr = None
        if not isinstance(observation, str | bytes):
            try:
                arr = np.asarray(observation)
            except (TypeError, ValueError):
                arr = None
        if arr is None or arr.dtype.kind not in "fiu":
            raise ValueError(
                f"{type(self).__name__}: observation must be a real numeric array, got "
                f"{observation!r}"
            )
        return arr.astype(np.float64)
