"""Named signals with units and bounds (python-control labels, GEM ``state_names``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SignalSpec", "index_of", "names_of", "reference_index"]


@dataclass(frozen=True)
class SignalSpec:
    """One named scalar signal of a plant.

    Parameters
    ----------
    name:
        Identifier, unique within its group (e.g. ``"omega"``, ``"i_sq"``).
    unit:
        Physical unit (``"rad/s"``, ``"A"``, ``"1"`` for dimensionless).
    low, high:
        Physical bounds; ``-inf``/``inf`` when unbounded.
    description:
        One-line human description.
    tracks:
        For a reference signal: the name of the observed signal it is a set-point for.
    """

    name: str
    unit: str = "1"
    low: float = -np.inf
    high: float = np.inf
    description: str = ""
    tracks: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("SignalSpec.name must be a non-empty string")
        if self.low > self.high:
            raise ValueError(f"signal {self.name!r}: low {self.low} > high {self.high}")


def names_of(specs: Sequence[SignalSpec]) -> list[str]:
    """Names of ``specs`` in order."""
    return [s.name for s in specs]


def index_of(specs: Sequence[SignalSpec], name: str) -> int:
    """Position of the signal called ``name``; a ``KeyError`` lists the valid names."""
    for i, s in enumerate(specs):
        if s.name == name:
            return i
    raise KeyError(f"unknown signal {name!r}; valid signals: {names_of(specs)}")


def reference_index(specs: Sequence[SignalSpec], tracked: str) -> int:
    """Position of the reference signal that ``tracks`` the signal called ``tracked``."""
    for i, s in enumerate(specs):
        if s.tracks == tracked:
            return i
    refs = {s.name: s.tracks for s in specs if s.tracks is not None}
    raise KeyError(f"no reference signal tracks {tracked!r}; references: {refs}")
