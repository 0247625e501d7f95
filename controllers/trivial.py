"""Trivial controllers for checks (registry name ``"zero"``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ctrlbench.controller import FeedbackController
from ctrlbench.plant import plant_dt, signals_of

__all__ = ["ZeroController", "make_zero"]


class ZeroController(FeedbackController):
    """A constant action, zero or the bound nearest zero per entry (open loop); useful to check
    plants and models.

    Parameters
    ----------
    dt:
        Control period.
    n_actions:
        Action dimension.
    low, high:
        Action bounds (default unbounded): an entry whose range excludes zero outputs its bound
        nearest zero (a jacket held at its coldest allowed temperature, say).
    """

    def __init__(self, dt: float, n_actions: int, low: Any = -np.inf, high: Any = np.inf) -> None:
        super().__init__(dt)
        self._zero = np.clip(np.zeros(n_actions), low, high)

    def reset(self) -> None:
        """Nothing to reset."""

    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """A fresh copy of the constant action."""
        return self._zero.copy()


def make_zero(plant: Any) -> ZeroController:
    """Zero action for ``plant`` (registry name ``"zero"``)."""
    _, act = signals_of(plant)
    return ZeroController(plant_dt(plant), len(act), [s.low for s in act], [s.high for s in act])
