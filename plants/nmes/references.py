"""Knee-angle reference profiles of ``ctrlbench/NMESKnee-v0`` (clinical extension range).

Knee-extension exercises under NMES hold or swing the shank between roughly 10 and 60 degrees
of extension (ctrlbench choice after Arcolezi et al. 2020's sinusoidal and step trajectories;
the exact clinical protocol is *unverified*).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Reference", "draw_reference"]

#: Step levels drawn per episode (enough for a session of ``N_LEVELS * hold_s`` seconds; the last
#: level is held after that).
N_LEVELS = 64


@dataclass(frozen=True)
class Reference:
    """A knee-angle reference ``theta_ref(t)`` [rad].

    Attributes
    ----------
    kind:
        ``"step"`` or ``"sine"``.
    low, high:
        Range [rad].
    levels:
        Step levels [rad], each held ``period`` seconds (empty for a sine).
    period:
        Hold time of a step level, or the sine period [s].
    """

    kind: str
    low: float
    high: float
    levels: tuple[float, ...]
    period: float

    def __call__(self, t: float) -> float:
        """The reference at time ``t`` [s]."""
        if self.kind == "sine":  # starts at the low end, smooth
            return self.low + (self.high - self.low) * 0.5 * (1.0 - math.cos(
                2.0 * math.pi * t / self.period))
        k = min(int(t // self.period), len(self.levels) - 1)
        return self.levels[max(k, 0)]


def draw_reference(rng: np.random.Generator, kind: str, low_deg: float, high_deg: float,
                   hold_s: float, sine_period_s: float) -> Reference:
    """A reference from the options, drawn with the episode's generator.

    Parameters
    ----------
    rng:
        The plant's ``np_random``.
    kind:
        ``"step"``, ``"sine"`` or ``"random"`` (one of the two, with equal probability).
    low_deg, high_deg:
        Range [deg].
    hold_s:
        Hold time of each step level [s].
    sine_period_s:
        Period of the sine [s].
    """
    if kind == "random":
        kind = "step" if rng.uniform() < 0.5 else "sine"
    low, high = math.radians(low_deg), math.radians(high_deg)
    if kind == "sine":
        return Reference("sine", low, high, (), sine_period_s)
    levels = tuple(float(v) for v in rng.uniform(low, high, N_LEVELS))
    return Reference("step", low, high, levels, hold_s)
