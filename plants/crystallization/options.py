"""Options of ``ctrlbench/Crystallization-v0`` (light: imported by ``ctrlbench list``)."""

from __future__ import annotations

from dataclasses import dataclass

from ctrlbench.options import OptionError, Options, option

__all__ = ["GRADE_NAMES", "CrystallizationOptions"]

#: ``"random"`` plus the named grades of :data:`plants.crystallization.references.GRADES`.
GRADE_NAMES = ("random", "small", "medium", "large", "coarse")

_RANGES = ("seed_mean_range", "seed_sd_range", "seed_mass_range", "c0_range", "temp0_range")


@dataclass(frozen=True)
class CrystallizationOptions(Options):
    """Options of ``ctrlbench/Crystallization-v0`` (ranges from MODELS.md section 3)."""

    label = "plant 'Crystallization-v0'"
    grade: str = option(
        "random", "product grade: 'random' draws conditions from the ranges below and sets the "
        "set-point to the size a random jacket run reaches; a name fixes both", choices=GRADE_NAMES)
    setpoint: float | None = option(
        None, "mean-size set-point [um]; None = the grade's", ge=10.0, le=490.0)
    noise: float = option(
        0.0, "relative std of Gaussian noise on every measured signal (not the set-point) [-]",
        ge=0.0, le=0.5)
    kinetic_uncertainty: bool = option(
        False, "draw the kinetic constants per reset seed ('different systems')")
    growth_spread: float = option(
        0.05, "relative half-width of the uniform factors on k_g, E_g, g when uncertain [-]",
        ge=0.0, le=0.2)
    nucleation_spread: float = option(
        0.10, "relative half-width of the uniform factors on k_b, b, n_b when uncertain [-]",
        ge=0.0, le=0.3)
    rate_limit: float = option(
        0.5, "largest jacket temperature change [C/min]; the applied value is rate limited",
        gt=0.0, le=10.0)
    seed_mean_range: tuple[float, ...] = option(
        (50.0, 150.0), "range of the seed mean size [um] (grade 'random')", ge=20.0, le=300.0)
    seed_sd_range: tuple[float, ...] = option(
        (5.0, 20.0), "range of the seed size standard deviation [um]", ge=2.0, le=50.0)
    seed_mass_range: tuple[float, ...] = option(
        (0.05, 0.25), "range of the seed mass per kg slurry [kg/kg]", ge=0.01, le=0.4)
    c0_range: tuple[float, ...] = option(
        (0.60, 0.85), "range of the initial dissolved dextrose [kg/kg slurry]", ge=0.3, le=1.0)
    temp0_range: tuple[float, ...] = option(
        (30.0, 40.0), "range of the initial slurry temperature [C]", ge=5.0, le=50.0)
    n_cells: int = option(250, "finite-volume cells on 1-500 um", ge=50, le=2000)
    rtol: float = option(1e-6, "relative tolerance of the stiff integrator", ge=1e-10, le=1e-3)
    method: str = option("LSODA", "scipy integrator (analytic Jacobian)",
                         choices=("LSODA", "BDF"))

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in _RANGES:
            value = getattr(self, name)
            if len(value) != 2 or value[0] > value[1]:
                raise OptionError(
                    f"{self.label}.{name} = {value!r} must be (low, high) with low <= high")
