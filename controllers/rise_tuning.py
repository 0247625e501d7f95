"""Tuning RISE gains for ``ctrlbench/NMESKnee-v0``: genetic search on identified patient models
and a reproducible hand-tuning sequence (Arcolezi et al., MODELS.md section 5).

- :func:`tune_rise`: scipy's ``differential_evolution`` (seeded, ``workers=1``, the population
  evaluated as one batch) over ``log10`` of the four RISE gains ``ks, alpha1, alpha2, beta`` in
  **physical units** (error in rad, pulse width in us; see :mod:`controllers.rise`), on a
  :class:`~controllers.nmes_ident.PatientModel`. Each candidate closes the loop with the real
  ``"rise"`` controller, built by ``ctrlbench.registry.make_controller("rise", plant, ...)`` on
  the real plant and driven through its ``update`` with the model's angles (plus measurement
  noise drawn once, the same for every candidate). The cost (:func:`closed_loop_cost`) is
  ``RMSE [deg] + effort_weight * mean pulse [% of 500 us] + tv_weight * mean |change of pulse|
  [% of 500 us]`` over :func:`tuning_references`, averaged over copies of the model whose input
  is scaled by ``gain_factors`` (0.8, 1, 1.25: a stronger or weaker, e.g. fatigued, patient
  than identified; without them the tuned loops oscillated out of the range on the true
  patients), plus ``out_penalty`` (and the part of the run left) when the model's angle leaves
  ``[-45, theta_max_deg]`` (75 deg: a margin to the plant's 90 deg stop, as the past sessions
  stay below ~70 deg and the models are not trusted above) in any copy.
- :func:`hand_tune_rise`: the trial-and-error sequence a clinician-engineer would follow, on the
  real plant with the nominal patient (one whole session on the step and one on the sine
  reference per trial), written out so it is reproducible: start from a moderate
  law (``ks = 40, alpha1 = 2, alpha2 = 1, beta = 10``); raise/lower ``ks`` over a coarse list
  and keep the best session that stays in range, then ``alpha1``, then ``alpha2`` (steady-state
  error), then ``beta`` (robustness term). Each trial is one shortened session (step reference,
  seed 0); "best" is the same cost as the genetic search's, measured on the plant.

Physical units are used because the law's derivative gain is ``ks + 1 >= 1`` in its output per
error rate: normalized (error / 80 deg, output / 500 us) that is at least 358 us per rad/s, which
makes any RISE on this plant chatter between 0 and 500 us.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ctrlbench.options import Options, option

__all__ = [
    "GAIN_NAMES",
    "HAND_SEQUENCE",
    "HAND_START",
    "RISEGains",
    "TuningResult",
    "TuningSettings",
    "closed_loop_cost",
    "hand_tune_rise",
    "rise_for",
    "tune_rise",
    "tuning_references",
]

FloatArray = NDArray[np.float64]
PLANT = "ctrlbench/NMESKnee-v0"
GAIN_NAMES = ("ks", "alpha1", "alpha2", "beta")
THETA_LOW = -math.pi / 4  # lower end of the plant's range of motion [rad]
P_MAX = 500.0


@dataclass(frozen=True)
class RISEGains:
    """RISE gains in physical units (rad, s, us).

    Attributes
    ----------
    ks:
        ``ks``: ``ks + 1`` multiplies ``e2`` [us s/rad].
    alpha1:
        ``alpha1`` [1/s].
    alpha2:
        ``alpha2`` [1/s].
    beta:
        Gain of the integrated sign of ``e2`` [us/s].
    """

    ks: float
    alpha1: float
    alpha2: float
    beta: float

    def __post_init__(self) -> None:
        for name in GAIN_NAMES:
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"RISEGains.{name} = {v!r} is out of range; valid: a finite "
                                 f"number >= 0")

    def as_dict(self) -> dict[str, float]:
        """The gains by option name of ``"rise"``."""
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_log10(cls, z: Sequence[float] | FloatArray) -> RISEGains:
        """Gains from their base-10 logarithms (the search variables)."""
        return cls(*(float(10.0 ** v) for v in z))

    def log10(self) -> FloatArray:
        """Base-10 logarithms of the gains (each at least 1e-6)."""
        return np.log10(np.maximum([getattr(self, n) for n in GAIN_NAMES], 1e-6))


@dataclass(frozen=True)
class TuningSettings(Options):
    """Settings of the RISE tuning (cost, references, genetic search)."""

    label = "rise tuning"
    tau_d: float = option(0.1, "derivative filter of the tuned RISE [s]", ge=0.0, le=5.0)
    effort_weight: float = option(0.02, "cost per % of mean pulse width (of 500 us) [deg/%]",
                                  ge=0.0, le=100.0)
    tv_weight: float = option(0.05, "cost per % of mean |pulse change| per period [deg/%]",
                              ge=0.0, le=100.0)
    out_penalty: float = option(100.0, "cost of leaving the range of motion [deg]", ge=0.0,
                                le=1e6)
    steps: int = option(600, "periods of each tuning reference (50 ms each)", ge=10, le=2000)
    theta_max_deg: float = option(
        75.0, "angle counted as leaving the range in the cost [deg] (the plant stops at 90; the "
        "margin covers model error above the ~70 deg the past sessions reached)", ge=10.0,
        le=90.0)
    gain_factors: tuple[float, ...] = option(
        (0.8, 1.0, 1.25), "the model's input is scaled by each (robustness to patient strength "
        "and fatigue); the cost averages them and any exit from the range is penalized",
        gt=0.0, le=10.0)
    noise_theta: float = option(0.005, "std of the simulated angle noise [rad]", ge=0.0, le=0.1)
    popsize: int = option(6, "differential_evolution popsize (x 4 gains)", ge=2, le=100)
    maxiter: int = option(12, "differential_evolution generations", ge=1, le=1000)
    seed: int = option(0, "seed of the search and of the simulated noise", ge=0)
    log10_low: tuple[float, ...] = option((-0.5, -1.0, -2.0, -1.0),
                                          "lower bounds of log10(ks, alpha1, alpha2, beta)")
    log10_high: tuple[float, ...] = option((3.0, 1.5, 1.0, 3.0),
                                           "upper bounds of log10(ks, alpha1, alpha2, beta)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.gain_factors:
            raise ValueError(f"{self.label}: gain_factors = () needs at least one factor")
        if len(self.log10_low) != 4 or len(self.log10_high) != 4:
            raise ValueError(f"{self.label}: log10_low / log10_high need 4 values each, got "
                             f"{self.log10_low!r}, {self.log10_high!r}")
        if any(lo >= hi for lo, hi in zip(self.log10_low, self.log10_high)):
            raise ValueError(f"{self.label}: log10_low {self.log10_low!r} must lie below "
                             f"log10_high {self.log10_high!r}")


def tuning_references(steps: int, dt: float = 0.05) -> list[FloatArray]:
    """The references the gains are tuned on [rad], each ``steps`` long: steps between 20, 45,
    30 and 55 deg (equal holds), and a 10-60 deg sine of period 8 s (the plant's default)."""
    t = np.arange(steps) * dt
    levels = np.radians([20.0, 45.0, 30.0, 55.0])
    step_ref = levels[np.minimum((np.arange(steps) * 4) // steps, 3)]
    low, high = math.radians(10.0), math.radians(60.0)
    sine = low + (high - low) * 0.5 * (1.0 - np.cos(2.0 * math.pi * t / 8.0))
    return [step_ref.astype(float), sine]


def rise_for(plant: Any, gains: RISEGains, tau_d: float) -> Any:
    """The registry's ``"rise"`` controller for ``plant`` with ``gains`` (physical units)."""
    from ctrlbench.registry import make_controller

    return make_controller("rise", plant, units="physical", tau_d=tau_d, **gains.as_dict())


def closed_loop_cost(gains: Sequence[RISEGains], model: Any, plant: Any,
                     settings: TuningSettings, theta0: float) -> tuple[FloatArray,
                                                                       list[dict[str, float]]]:
    """Cost of each gain set on the identified ``model`` (one batched simulation).

    Parameters
    ----------
    gains:
        Candidate gains.
    model:
        A fitted :class:`~controllers.nmes_ident.PatientModel`.
    plant:
        The real plant (the controllers are built on it; it is not stepped).
    settings:
        Cost and references.
    theta0:
        Initial angle at rest [rad] (the patient's measured rest angle).

    Returns
    -------
    costs, metrics
        The cost per candidate and its parts (``rmse_deg``, ``effort_pct``, ``tv_pct``, ``out``).
    """
    if len(gains) == 0:
        raise ValueError("closed_loop_cost needs at least one gain set, got none")
    factors = np.asarray(settings.gain_factors, dtype=float)
    m = len(factors)
    n = len(gains) * m  # one loop per (candidate, input-gain factor), candidate-major
    scale = np.tile(factors, len(gains))
    ctrls = [rise_for(plant, g, settings.tau_d) for g in gains for _ in factors]
    rng = np.random.default_rng(settings.seed)
    sq, effort, tv = np.zeros(n), np.zeros(n), np.zeros(n)
    out_frac, total = np.zeros(n), 0
    sim = model.simulator(n)
    high = math.radians(settings.theta_max_deg)
    for ref in tuning_references(settings.steps):
        theta = sim.reset((theta0, 0.0))
        for c in ctrls:
            c.reset()
        alive = np.ones(n, dtype=bool)
        u_prev = np.zeros(n)
        noise = settings.noise_theta * rng.standard_normal(len(ref))
        for k, r in enumerate(ref):
            y = theta + noise[k]
            u = np.array([c.update(float(r - yi)) if a else 0.0
                          for c, yi, a in zip(ctrls, y, alive)])
            theta = sim.step(scale * u)  # the patient receives the pulse times its factor
            err = ref[min(k + 1, len(ref) - 1)] - theta
            sq += np.where(alive, err**2, 0.0)
            effort += np.where(alive, u, 0.0)
            tv += np.where(alive, np.abs(u - u_prev), 0.0)
            u_prev = u
            left = alive & ((theta < THETA_LOW) | (theta > high))
            out_frac += np.where(left, (len(ref) - k - 1) / len(ref), 0.0)
            alive &= ~left
        total += len(ref)
    # per candidate: mean over the factors, out of range if any factor left the range
    rmse = np.degrees(np.sqrt(sq / total)).reshape(-1, m).mean(axis=1)
    eff = (100.0 * effort / total / P_MAX).reshape(-1, m).mean(axis=1)
    tvp = (100.0 * tv / total / P_MAX).reshape(-1, m).mean(axis=1)
    frac = out_frac.reshape(-1, m).max(axis=1)
    cost = (rmse + settings.effort_weight * eff + settings.tv_weight * tvp
            + settings.out_penalty * (frac > 0) * (1.0 + frac))
    mets = [{"rmse_deg": float(a), "effort_pct": float(b), "tv_pct": float(c),
             "out": float(d > 0)} for a, b, c, d in zip(rmse, eff, tvp, frac)]
    return cost, mets


@dataclass
class TuningResult:
    """Outcome of :func:`tune_rise`.

    Attributes
    ----------
    gains:
        Best gains found.
    cost, metrics:
        Their cost on the model and its parts.
    start_gains, start_cost:
        The starting gains (in the initial population) and their cost.
    nfev, nit:
        Cost evaluations and generations.
    history:
        Best cost after each generation.
    """

    gains: RISEGains
    cost: float
    metrics: dict[str, float]
    start_gains: RISEGains
    start_cost: float
    nfev: int
    nit: int
    history: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        d = asdict(self)
        d["gains"], d["start_gains"] = self.gains.as_dict(), self.start_gains.as_dict()
        return d


def tune_rise(model: Any, plant: Any, start: RISEGains, settings: TuningSettings | None = None,
              *, theta0: float = 0.15) -> TuningResult:
    """Genetic (differential evolution) tuning of RISE on an identified patient model.

    Parameters
    ----------
    model:
        A fitted :class:`~controllers.nmes_ident.PatientModel`.
    plant:
        The real plant, on which the ``"rise"`` controllers are built (not stepped).
    start:
        Starting gains, placed in the initial population (the result is never worse); gains
        outside the search bounds (a zero ``alpha2`` or ``beta``) are moved to the nearest bound.
    settings:
        Cost, references and search budget.
    theta0:
        Initial angle at rest [rad].
    """
    from scipy.optimize import differential_evolution

    s = settings or TuningSettings()
    lo, hi = np.asarray(s.log10_low), np.asarray(s.log10_high)
    z0 = np.clip(start.log10(), lo, hi)
    start = RISEGains.from_log10(z0)
    start_cost = float(closed_loop_cost([start], model, plant, s, theta0)[0][0])
    history: list[float] = []
    evaluated = [0]

    def batch(z: FloatArray) -> FloatArray:  # z: (4, S), the population at once
        gs = [RISEGains.from_log10(col) for col in np.atleast_2d(z.T)]
        evaluated[0] += len(gs)
        return closed_loop_cost(gs, model, plant, s, theta0)[0]

    def note(intermediate_result: Any) -> None:
        history.append(float(intermediate_result.fun))

    res = differential_evolution(batch, list(zip(lo, hi)), popsize=s.popsize,
                                 maxiter=s.maxiter, seed=s.seed, x0=z0, polish=False,
                                 updating="deferred", vectorized=True, workers=1, tol=1e-4,
                                 callback=note)
    best = RISEGains.from_log10(res.x)
    cost, mets = closed_loop_cost([best], model, plant, s, theta0)
    if cost[0] > start_cost:  # cannot happen with x0 in the population; keep the guarantee
        best, cost, mets = start, np.array([start_cost]), closed_loop_cost(
            [start], model, plant, s, theta0)[1]
    return TuningResult(gains=best, cost=float(cost[0]), metrics=mets[0], start_gains=start,
                        start_cost=start_cost, nfev=evaluated[0], nit=int(res.nit),
                        history=history)


HAND_START = RISEGains(ks=40.0, alpha1=2.0, alpha2=1.0, beta=10.0)
"""Where the hand tuning starts: a moderate law (proportional gain ``(ks + 1)(alpha1 + alpha2)``
123 us/rad, derivative 41 us per rad/s, integral 82 us/(rad s)). RISE subtracts ``e2(0)``, so
its proportional part only acts on changes of the error: the integral must be on from the start
(without it the output stays at 0 us on a rising reference)."""
HAND_SEQUENCE: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("ks", (10.0, 20.0, 40.0, 80.0, 160.0, 320.0)),
    ("alpha1", (1.0, 2.0, 4.0, 8.0)),
    ("alpha2", (0.3, 1.0, 3.0, 10.0)),
    ("beta", (0.0, 10.0, 30.0, 100.0, 300.0)),
)
"""The trial lists, one gain at a time, in this order (each keeps the best of its list)."""


def plant_cost(gains: RISEGains, plant_options: dict[str, Any], settings: TuningSettings,
               *, seed: int = 0, steps: int = 400) -> tuple[float, dict[str, float]]:
    """The tuning cost of ``gains`` measured in one session of the real plant.

    Returns
    -------
    cost, metrics
        Cost as in :func:`closed_loop_cost` (RMSE on the true angle) and its parts.
    """
    from ctrlbench.registry import make_plant
    from ctrlbench.simulate import simulate

    plant = make_plant(PLANT, **plant_options)
    try:
        traj = simulate(plant, rise_for(plant, gains, settings.tau_d), steps=steps, seed=seed)
    finally:
        plant.close()
    theta = traj.info["theta_true"]
    high = np.flatnonzero(theta > math.radians(settings.theta_max_deg))
    n = int(high[0]) + 1 if high.size else len(theta)  # scored up to the first exit
    err = traj.observations[1:n + 1, 4] - theta[:n]
    u = traj.actions[:n, 0]
    rmse = math.degrees(float(np.sqrt(np.mean(err**2))))
    eff = 100.0 * float(np.mean(u)) / P_MAX
    tvp = 100.0 * float(np.mean(np.abs(np.diff(u, prepend=0.0)))) / P_MAX
    out = bool(traj.terminated) or bool(high.size)
    cost = (rmse + settings.effort_weight * eff + settings.tv_weight * tvp
            + settings.out_penalty * out * (1.0 + (steps - n) / steps))
    return cost, {"rmse_deg": rmse, "effort_pct": eff, "tv_pct": tvp, "out": float(out)}


def hand_tune_rise(plant_options: dict[str, Any] | None = None,
                   settings: TuningSettings | None = None, *, steps: int = 800,
                   references: tuple[str, ...] = ("step", "sine"),
                   sequence: tuple[tuple[str, tuple[float, ...]], ...] = HAND_SEQUENCE,
                   start: RISEGains = HAND_START,
                   on_trial: Callable[[RISEGains, float], None] | None = None
                   ) -> tuple[RISEGains, list[dict[str, Any]]]:
    """The documented trial-and-error tuning on the real plant (module docstring).

    Parameters
    ----------
    plant_options:
        Options of ``ctrlbench/NMESKnee-v0`` for the trials (default: nominal patient); each
        trial is one session per reference with reset seed 0.
    settings:
        The cost's weights and the RISE filter ``tau_d``.
    steps:
        Periods per session (800: a whole session, so fatigue shows).
    references:
        The plant's ``reference`` option of each session of a trial; the trial's cost is the
        mean over them.
    sequence:
        ``(gain name, values)`` in the order they are tried.
    start:
        Gains before the first trial.
    on_trial:
        Called with each trial's gains and cost.

    Returns
    -------
    gains, trials
        The kept gains and every trial (gains, cost, metrics).

    Raises
    ------
    ValueError
        A gain name in ``sequence`` that RISE does not have.
    """
    s = settings or TuningSettings()
    if not references:
        raise ValueError("hand_tune_rise needs at least one reference, got none")
    popts = {"patient": "nominal", **(plant_options or {})}
    best = start
    trials: list[dict[str, Any]] = []
    for name, values in sequence:
        if name not in GAIN_NAMES:
            raise ValueError(f"hand-tuning gain {name!r} is not a RISE gain; valid: "
                             f"{', '.join(GAIN_NAMES)}")
        scored = []
        for v in values:
            g = RISEGains(**{**best.as_dict(), name: float(v)})
            runs = [plant_cost(g, {**popts, "reference": ref}, s, steps=steps)
                    for ref in references]
            cost = float(np.mean([c for c, _ in runs]))
            mets = {k: float(np.mean([m[k] for _, m in runs])) for k in runs[0][1]}
            trials.append({"gains": g.as_dict(), "cost": cost, **mets})
            if on_trial is not None:
                on_trial(g, cost)
            scored.append((cost, g))
        best = min(scored, key=lambda cg: cg[0])[1]
    return best, trials
