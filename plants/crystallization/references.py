"""Grades (mean-size set-points), operating conditions and random jacket profiles.

MODELS.md section 3: seeds are normal with mean 50-150 um, sd 5-20 um and 5-25 % seed mass
(kg seed per kg slurry); the initial concentration is 0.60-0.85 kg/kg; jacket profiles are
piecewise constant per hour within 5-40 C; a set-point is the final mean size that a random
jacket run reached. The random profile is the hourly random walk of the authors' CrystalGPT
``temp_generation`` (steps uniform in ``[-d, 0.6 d]``, ``d ~ U(2, 5)`` C, clipped to 5-40 C),
started at the initial slurry temperature (drawn in 30-40 C, the validity range of the
solubility). The final size is computed with the moments model, which agrees with the PBE to
~1e-4 (``tests/plants/test_crystallization.py``).

Named grades fix the operating conditions and the set-point, so a controller tuned on one can be
run on the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plants.crystallization.model import CrystalParams, PopulationBalance, SizeGrid
from plants.crystallization.moments import scale_moments, simulate_moments

__all__ = [
    "GRADES",
    "NOMINAL",
    "Conditions",
    "Grade",
    "draw_conditions",
    "initial_moments",
    "random_jacket_profile",
    "reached_size",
]

STEPS_PER_HOUR = 6
BATCH_HOURS = 24


@dataclass(frozen=True)
class Conditions:
    """Initial operating conditions of a batch.

    Attributes
    ----------
    seed_mean, seed_sd:
        Normal seed size distribution [um].
    seed_mass_fraction:
        Seed crystal mass per kg slurry [kg/kg].
    c0:
        Initial dissolved dextrose [kg/kg slurry].
    temp0:
        Initial slurry temperature, also the jacket's starting value [C].
    """

    seed_mean: float
    seed_sd: float
    seed_mass_fraction: float
    c0: float
    temp0: float


@dataclass(frozen=True)
class Grade:
    """A product grade: a mean-size set-point and the conditions it is made from.

    Attributes
    ----------
    setpoint:
        Final mean size ``mu_4 / mu_3`` wanted [um].
    conditions:
        Initial operating conditions.
    description:
        One line.
    """

    setpoint: float
    conditions: Conditions
    description: str


NOMINAL = Conditions(seed_mean=100.0, seed_sd=12.5, seed_mass_fraction=0.15, c0=0.725,
                     temp0=35.0)
"""Mid-range conditions (centre of every MODELS.md range)."""

#: Named grades. Under nominal kinetics a constant jacket gives final sizes from 123.5 um (40 C)
#: to 154.9 um (5 C) at NOMINAL, and 174.1 um (40 C) to 212.8 um (5 C) at the "coarse" ones.
GRADES: dict[str, Grade] = {
    "small": Grade(130.0, NOMINAL, "130 um from the nominal seed"),
    "medium": Grade(140.0, NOMINAL, "140 um from the nominal seed (the PI tuning grade)"),
    "large": Grade(150.0, NOMINAL, "150 um from the nominal seed"),
    "coarse": Grade(195.0, Conditions(140.0, 15.0, 0.10, 0.70, 35.0),
                    "195 um from a coarse, light seed"),
}


def draw_conditions(rng: np.random.Generator, seed_mean: tuple[float, ...],
                    seed_sd: tuple[float, ...], seed_mass: tuple[float, ...],
                    c0: tuple[float, ...], temp0: tuple[float, ...]) -> Conditions:
    """Conditions drawn uniformly from the ``(low, high)`` ranges, in this order."""
    vals = [float(rng.uniform(lo, hi)) for lo, hi in (seed_mean, seed_sd, seed_mass, c0, temp0)]
    return Conditions(*vals)


def random_jacket_profile(rng: np.random.Generator, temp0: float, low: float = 5.0,
                          high: float = 40.0, hours: int = BATCH_HOURS) -> NDArray[np.float64]:
    """An hourly random-walk jacket profile on the 10-min grid (``6 * hours`` values) [C].

    The first hour holds ``temp0`` (clipped to the bounds); each later hour moves by
    ``U(-d, 0.6 d)`` with ``d ~ U(2, 5)`` C drawn once (CrystalGPT ``temp_generation``).
    """
    d = float(rng.uniform(2.0, 5.0))
    temps = [min(max(temp0, low), high)]
    for _ in range(hours - 1):
        temps.append(min(max(temps[-1] + float(rng.uniform(-d, 0.6 * d)), low), high))
    return np.repeat(np.asarray(temps), STEPS_PER_HOUR)


def initial_moments(conditions: Conditions, grid: SizeGrid | None = None,
                    params: CrystalParams | None = None) -> NDArray[np.float64]:
    """Scaled moments-model state ``[mu0..mu4, c, T]`` of the discretised seed at time 0."""
    pbe = PopulationBalance(params, grid)
    y, f_scale = pbe.initial_state(conditions.seed_mean, conditions.seed_sd,
                                   conditions.seed_mass_fraction, conditions.c0)
    mom = scale_moments(pbe.moments(y, f_scale))
    return np.concatenate((mom, [conditions.c0, conditions.temp0]))


def reached_size(params: CrystalParams, conditions: Conditions,
                 jacket_profile: NDArray[np.float64], grid: SizeGrid | None = None) -> float:
    """Final mean size [um] that ``jacket_profile`` reaches (moments model)."""
    xs = simulate_moments(params, initial_moments(conditions, grid, params), jacket_profile,
                          l_min=(grid or SizeGrid()).l_min)
    return float(1e2 * xs[-1, 4] / xs[-1, 3])
