"""Trivial controllers for checks (registry name ``"zero"``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ctrlbench.controller import FeedbackController
from ctrlbench.plant import plant_dt, signals_of

__all__ = ["ZeroController", "make_zero"]


class ZeroController(FeedbackController):
    """Always outputs zeros (open loop); useful to check plants and models.

    Parameters
    ----------
    dt:
        Control period.
    n_actions:
        Action dimension.
    """

    def __init__(self, dt: float, n_actions: int) -> None:
        super().__init__(dt)
        self._zero = np.zeros(n_actions)

    def reset(self) -> None:
        """Nothing to reset."""

    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """A fresh zero action."""
        return self._zero.copy()


def make_zero(plant: Any) -> ZeroController:
    """Zero action for ``plant`` (registry name ``"zero"``)."""
    _, act = signals_of(plant)
    return ZeroController(plant_dt(plant), len(act))
