"""Options of ``ctrlbench/LaserPulse-v0`` (light: imported by ``ctrlbench list``)."""

from __future__ import annotations

from dataclasses import dataclass

from ctrlbench.options import Options, option

__all__ = ["LaserPulseOptions"]


@dataclass(frozen=True)
class LaserPulseOptions(Options):
    """Options of ``ctrlbench/LaserPulse-v0`` (settings normalized to [0, 1])."""

    label = "plant 'LaserPulse-v0'"
    b_integral: float = option(2.0, "B-integral of self-phase modulation [rad]", ge=0.0, le=10.0)
    reset_noise: float = option(
        0.1, "std of the Gaussian start around the compressor-matching setting [normalized]",
        ge=0.0, le=1.0)
    alive_bonus: float = option(0.04, "reward per step before the episode ends (the authors' "
                                "v2: (0.1 x 2)^2)", ge=0.0, le=100.0)
    fwhm_weight: float = option(0.1, "reward penalty per ps of FWHM [1/ps]", ge=0.0, le=100.0)
    intensity_cap: float = option(7.0, "cap of the intensity bonus 0.1/(1 - x) - 0.1",
                                  gt=0.0, le=1e3)
    max_fwhm_ps: float = option(20.0, "the episode terminates when the FWHM reaches this [ps]",
                                gt=1.0, le=1000.0)
