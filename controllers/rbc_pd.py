"""Classical baselines for Rayleigh–Bénard control: a per-segment PD law and open-loop forcing.

``"rbc-pd"``: a proportional-derivative law on the local probe temperature, per heated segment.
``"rbc-mode"``: open-loop heating shaped as one Fourier mode, ``a_i = A cos(m x_i + phase)`` at
the segment centres ``x_i`` for ``duration`` actions, zero afterwards: it imposes ``2 m``
convection rolls, and shows whether the flow keeps them once the heating stops (the persistence
Vignon et al. report for their MARL-controlled single cell).

The classical baseline of Rayleigh–Bénard control (e.g. Markmann et al. 2025 compare PPO with
PD control): segment ``i`` reads the mean temperature ``T_i`` of the lowest probe row over its
own probe columns and is heated against the deviation from the row mean,

    a_i = clip(-kp (T_i - mean_j T_j) - kd d/dt (T_i - mean_j T_j), -1, 1),

so a segment under a hot (rising) plume is cooled and one under a cold (falling) plume heated,
which opposes the convection rolls; a negative ``kp`` reinforces them instead. The derivative is
a backward difference over one control period (zero on the first step). The plant maps the ten
values to temperatures of mean exactly 2 (``plants.rbc.model.segment_temperatures``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ctrlbench.capabilities import NotApplicableError
from ctrlbench.controller import FeedbackController
from ctrlbench.options import Options, option
from ctrlbench.plant import plant_dt, signals_of

__all__ = ["ModeForcing", "RBCModeOptions", "RBCPDOptions", "SegmentPD", "make_rbc_mode",
           "make_rbc_pd"]


@dataclass(frozen=True)
class RBCPDOptions(Options):
    """Options of the ``"rbc-pd"`` controller."""

    label = "controller 'rbc-pd'"
    kp: float = option(5.0, "proportional gain [1 per unit temperature]", ge=-1e3, le=1e3)
    kd: float = option(0.0, "derivative gain [time units per unit temperature]",
                       ge=-1e3, le=1e3)
    row: int = option(7, "probe row read (0 top .. 7 bottom)", ge=0, le=7)


class SegmentPD(FeedbackController):
    """PD per segment on probe-temperature deviations (see the module docstring).

    Parameters
    ----------
    dt:
        Control period.
    columns:
        Per segment, the indices into the observation of its probe temperatures.
    kp, kd:
        Gains.
    """

    def __init__(self, dt: float, columns: list[NDArray[np.int64]], kp: float, kd: float
                 ) -> None:
        super().__init__(dt)
        self.columns = columns
        self.kp, self.kd = float(kp), float(kd)
        self._prev: NDArray[np.float64] | None = None

    def reset(self) -> None:
        """Forget the previous deviation."""
        self._prev = None

    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """Ten segment actions in [-1, 1]."""
        obs = np.asarray(observation, dtype=np.float64)
        local = np.array([obs[c].mean() for c in self.columns])
        dev = local - local.mean()
        rate = np.zeros_like(dev) if self._prev is None else (dev - self._prev) / self.dt
        self._prev = dev
        out: NDArray[np.float64] = np.clip(-self.kp * dev - self.kd * rate, -1.0, 1.0)
        return out


def make_rbc_pd(plant: Any, options: RBCPDOptions | None = None) -> SegmentPD:
    """The PD law for ``ctrlbench/RBC-v0`` (registry name ``"rbc-pd"``)."""
    from plants.rbc.model import N_SEGMENTS, agent_columns

    opts = options or RBCPDOptions()
    obs, _ = signals_of(plant)
    names = [s.name for s in obs]
    columns = []
    for i in range(N_SEGMENTS):
        wanted = [f"T_{opts.row}_{c}" for c in agent_columns(i)]
        if not all(w in names for w in wanted):
            raise NotApplicableError(
                f"controller 'rbc-pd' is not applicable to this plant: it reads the probe "
                f"temperatures {wanted[0]}.. of ctrlbench/RBC-v0, which the plant does not "
                "observe")
        columns.append(np.array([names.index(w) for w in wanted]))
    return SegmentPD(plant_dt(plant), columns, opts.kp, opts.kd)


@dataclass(frozen=True)
class RBCModeOptions(Options):
    """Options of the ``"rbc-mode"`` controller."""

    label = "controller 'rbc-mode'"
    m: int = option(1, "Fourier mode of the heating (2 m rolls; 5 would vanish at every "
                    "segment centre)", ge=1, le=4)
    amplitude: float = option(1.0, "action amplitude", ge=0.0, le=1.0)
    phase: float = option(0.0, "phase [rad]", ge=-10.0, le=10.0)
    duration: int = option(0, "actions with heating, then zero (0: always)", ge=0,
                           le=1_000_000)


class ModeForcing(FeedbackController):
    """Open-loop ``A cos(m x_i + phase)`` on the 10 segments (see the module docstring)."""

    def __init__(self, dt: float, opts: RBCModeOptions) -> None:
        super().__init__(dt)
        centres = 2.0 * np.pi * (np.arange(10) + 0.5) / 10
        self.profile = opts.amplitude * np.cos(opts.m * centres + opts.phase)
        self.duration = opts.duration
        self._k = 0

    def reset(self) -> None:
        """Restart the heating period."""
        self._k = 0

    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """The profile during the heating period, zero after it."""
        self._k += 1
        on = self.duration == 0 or self._k <= self.duration
        out: NDArray[np.float64] = self.profile.copy() if on else np.zeros(10)
        return out


def make_rbc_mode(plant: Any, options: RBCModeOptions | None = None) -> ModeForcing:
    """Open-loop mode forcing for ``ctrlbench/RBC-v0`` (registry name ``"rbc-mode"``)."""
    make_rbc_pd(plant)                       # the same applicability check
    return ModeForcing(plant_dt(plant), options or RBCModeOptions())
