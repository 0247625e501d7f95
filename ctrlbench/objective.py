"""A plant's *setting objective*: a batched black-box cost of the setting its actions move.

Some plants are tuned rather than regulated: the action moves a setting (a laser's stretcher
dispersion) and what matters is the quality measured at that setting. Such a plant offers
``objective()`` (declared as ``Provides(objective=True)``), and black-box optimizers (Bayesian
optimization, differential evolution) search the setting directly, counting every evaluation,
then steer the plant to the best setting found within its action bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["SettingObjective"]


@dataclass(frozen=True)
class SettingObjective:
    """A cost over settings in the unit box ``[0, 1]^dim`` (lower is better).

    Attributes
    ----------
    names:
        One name per setting coordinate (``dim = len(names)``).
    evaluate:
        ``settings (n, dim) -> costs (n,)``; one call is ``n`` plant evaluations.
    setting_index:
        Observation entries that hold the current setting (in the same unit-box coordinates), so
        a controller can steer from where the plant is.
    metric:
        What the cost is, with its unit (``"FWHM [ps]"``).
    """

    names: tuple[str, ...]
    evaluate: Callable[[NDArray[np.float64]], NDArray[np.float64]]
    setting_index: tuple[int, ...]
    metric: str

    @property
    def dim(self) -> int:
        """Number of setting coordinates."""
        return len(self.names)

    def __call__(self, settings: NDArray[np.float64]) -> NDArray[np.float64]:
        """Costs of ``settings`` (one setting ``(dim,)`` or a batch ``(n, dim)``), checked.

        Raises ``ValueError`` for a wrong shape, a non-finite value or one outside ``[0, 1]``.
        """
        arr = np.asarray(settings, dtype=np.float64)
        single = arr.ndim == 1
        batch = arr[None, :] if single else arr
        if batch.ndim != 2 or batch.shape[1] != self.dim:
            raise ValueError(f"settings must have shape ({self.dim},) or (n, {self.dim}) "
                             f"({', '.join(self.names)}), got {arr.shape}")
        bad = ~np.isfinite(batch) | (batch < 0.0) | (batch > 1.0)
        if bad.any():
            raise ValueError(f"settings must be finite and within [0, 1]; got "
                             f"{batch[bad.any(axis=1)][0].tolist()}")
        costs = np.asarray(self.evaluate(batch), dtype=np.float64)
        return costs[0:1].reshape(()) if single else costs
