"""Options of the Rayleigh–Bénard plants (light: imported by ``ctrlbench list``)."""

from __future__ import annotations

from dataclasses import dataclass

from ctrlbench.options import OptionError, Options, option

__all__ = ["RBCOptions"]


@dataclass(frozen=True)
class RBCOptions(Options):
    """Options of ``ctrlbench/RBC-v0`` and its multi-agent views (defaults: Vignon et al. 2023)."""

    label = "plant 'RBC-v0'"
    ra: float = option(1e4, "Rayleigh number, half-height scaling (onset near 213.5)",
                       gt=0.0, le=1e7)
    pr: float = option(0.7, "Prandtl number", gt=0.0, le=100.0)
    nx: int = option(96, "Fourier points in x (even)", ge=8, le=512)
    ny: int = option(64, "Chebyshev points in y, walls included", ge=8, le=256)
    dt: float = option(0.05, "solver time step [free-fall units]; 96+ Chebyshev points "
                       "need 0.025", gt=0.0, le=0.5)
    action_period: float = option(1.5, "time one action lasts [free-fall units]; a multiple "
                                  "of dt", gt=0.0, le=100.0)
    start: str = option("developed", "episode start: the cached developed uncontrolled flow, "
                        "the authors' random start, or conduction with noise",
                        choices=("developed", "authors", "conduction"))
    start_time: float = option(400.0, "age of the developed start [free-fall units]",
                               ge=0.0, le=1e5)
    noise: float = option(1e-3, "std of the random temperature start", ge=0.0, le=1.0)
    start_seed: int = option(0, "seed of the developed start's random initial condition",
                             ge=0, le=2**31 - 1)
    backend: str = option("spectral", "solver: the batched spectral solver (torch) or the "
                          "DOLFINx finite-element worker", choices=("spectral", "fem"))
    device: str = option("cpu", "torch device of the spectral solver",
                         choices=("cpu", "cuda"))
    cache_dir: str = option("", "where developed starts are cached (default: "
                            "$CTRLBENCH_CACHE or ~/.cache/ctrlbench)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nx % 2:
            raise OptionError(f"{self.label}.nx = {self.nx} must be even")
        ratio = self.action_period / self.dt
        if abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio) or round(ratio) < 1:
            raise OptionError(f"{self.label}: action_period = {self.action_period} is not a "
                              f"whole number of steps dt = {self.dt}")

    @property
    def steps_per_action(self) -> int:
        """Solver steps per action."""
        return max(1, round(self.action_period / self.dt))
