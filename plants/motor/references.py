"""Deterministic reference profiles for GEM environments (imports gym-electric-motor)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gym_electric_motor.core import ReferenceGenerator
from gymnasium.spaces import Box
from numpy.typing import NDArray

__all__ = ["StepReference"]


class StepReference(ReferenceGenerator):  # type: ignore[misc]
    """Step from ``before`` to ``after`` at step ``k_step`` on one or more GEM states.

    Values are physical (same units as the state); GEM works with values normalised by the state
    limits, so they are divided by the limits once in :meth:`set_modules`.

    Parameters
    ----------
    states:
        Names of the referenced GEM states, e.g. ``("i_sd", "i_sq")``.
    before, after:
        Reference values before and from step ``k_step`` on.
    k_step:
        Control step at which the reference jumps (the observation at index ``k_step`` is the first
        to show ``after``).
    """

    def __init__(
        self,
        states: Sequence[str],
        before: Sequence[float],
        after: Sequence[float],
        k_step: int,
    ) -> None:
        super().__init__()
        if not (len(states) == len(before) == len(after)):
            raise ValueError("states, before and after must have the same length")
        self._states = tuple(states)
        self._before = np.asarray(before, dtype=float)
        self._after = np.asarray(after, dtype=float)
        self._k_step = int(k_step)
        self._reference_names = list(self._states)
        self._k = 0
        self._n_before = self._before
        self._n_after = self._after
        self._full = np.zeros(0)

    def set_modules(self, physical_system: Any) -> None:
        """Store the state positions and normalise the values by GEM's limits."""
        super().set_modules(physical_system)
        names = list(physical_system.state_names)
        idx = [names.index(s) for s in self._states]
        mask = np.zeros(len(names), dtype=bool)
        mask[idx] = True
        self._referenced_states = mask
        limits = np.asarray(physical_system.limits, dtype=float)[idx]
        self._n_before = self._before / limits
        self._n_after = self._after / limits
        self._idx = np.asarray(idx)
        self._full = np.zeros(len(names))
        lo = np.minimum(self._n_before, self._n_after)
        hi = np.maximum(self._n_before, self._n_after)
        self.reference_space = Box(np.minimum(lo, -1.0), np.maximum(hi, 1.0), dtype=np.float64)

    def _value(self, k: int) -> NDArray[np.float64]:
        return self._n_after if k > self._k_step else self._n_before

    def reset(self, initial_state: Any = None, initial_reference: Any = None) -> Any:
        """Restart the profile at step 0."""
        self._k = 0
        return super().reset(initial_state, initial_reference)

    def get_reference(self, *_: Any, **__: Any) -> NDArray[np.float64]:
        """Full-length reference array for GEM's reward (zeros on unreferenced states)."""
        ref = self._full.copy()
        ref[self._idx] = self._value(self._k)
        return ref

    def get_reference_observation(self, *_: Any, **__: Any) -> NDArray[np.float64]:
        """The reference the next state is compared against; advances the profile."""
        self._k += 1
        return self._value(self._k).copy()
