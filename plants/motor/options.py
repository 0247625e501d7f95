"""Options of the motor plants (light: no gym-electric-motor import), validated by range.

Bounds come from the GEM 3.0.3 limits of the wrapped environments: DC speed 400 rad/s and
armature current 210 A; PMSM current vector 400 A and speed 418.9 rad/s (4000 rpm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ctrlbench.options import OptionError, Options, option

__all__ = ["DCSpeedOptions", "PMSMCurrentOptions"]

#: GEM's limits (SI) for the two environments.
DC_OMEGA_MAX = 400.0
PMSM_I_MAX = 400.0
PMSM_OMEGA_MAX = 418.87902047863906


@dataclass(frozen=True)
class DCSpeedOptions(Options):
    """Options of ``ctrlbench/DCSpeed-v0``."""

    label = "plant 'DCSpeed-v0'"
    reference: Literal["gem", "step"] = option(
        "gem", "'gem': GEM's random Wiener speed reference; 'step': 0, then step_to at step_time",
        choices=("gem", "step"))
    step_to: float = option(100.0, "speed after the step [rad/s] (reference='step')",
                            ge=-DC_OMEGA_MAX, le=DC_OMEGA_MAX)
    step_time: float = option(1e-3, "time of the step [s] (reference='step')", ge=0, le=1.0)


@dataclass(frozen=True)
class PMSMCurrentOptions(Options):
    """Options of ``ctrlbench/PMSMCurrent-v0``."""

    label = "plant 'PMSMCurrent-v0'"
    reference: Literal["gem", "step"] = option(
        "gem", "'gem': GEM's random Wiener current references; 'step': 0, then the step values",
        choices=("gem", "step"))
    i_sd_step: float = option(-50.0, "d-axis current after the step [A] (reference='step')",
                              ge=-PMSM_I_MAX, le=PMSM_I_MAX)
    i_sq_step: float = option(100.0, "q-axis current after the step [A] (reference='step')",
                              ge=-PMSM_I_MAX, le=PMSM_I_MAX)
    step_time: float = option(1e-3, "time of the step [s] (reference='step')", ge=0, le=1.0)
    omega: float = option(100.0, "mechanical speed held by the load [rad/s]",
                          ge=-PMSM_OMEGA_MAX, le=PMSM_OMEGA_MAX)

    def __post_init__(self) -> None:
        super().__post_init__()
        norm = math.hypot(self.i_sd_step, self.i_sq_step)
        if norm > PMSM_I_MAX:
            raise OptionError(
                f"{self._where()}: the step current vector (i_sd_step, i_sq_step) = "
                f"({self.i_sd_step:g}, {self.i_sq_step:g}) A has magnitude {norm:.4g} A; valid: "
                f"<= {PMSM_I_MAX:g} A (GEM's current limit)"
            )
