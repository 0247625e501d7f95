"""Black-box setting search: Bayesian optimization and differential evolution (``"bo"``, ``"de"``).

TempoRL (Capuano et al. 2023) compares its RL agents with these two baselines, counted in plant
evaluations. Both search a plant's :class:`~ctrlbench.objective.SettingObjective` (a batched cost
over settings in the unit box) within an evaluation budget, then steer the plant to the best
setting found within its action bounds and hold it there.

- :func:`search_bo`: Optuna's ``GPSampler`` (Gaussian process, log expected improvement) or its
  multivariate ``TPESampler``, one evaluation per trial, in-memory storage.
- :func:`search_de`: :func:`scipy.optimize.differential_evolution` with ``vectorized=True``, so
  one objective call evaluates a whole generation in one batched pass.

Every evaluation goes through one counting wrapper that stops the search as soon as the budget is
spent (a generation is cut short rather than exceeding it), so :attr:`SearchResult.evaluations`
is what was really evaluated, never an estimate, and never above the budget. Optuna and scipy
are imported inside the functions (``import ctrlbench`` stays light).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ctrlbench.controller import FeedbackController
from ctrlbench.objective import SettingObjective
from ctrlbench.options import Options, option
from ctrlbench.plant import plant_dt, signals_of

__all__ = ["BOOptions", "DEOptions", "SearchResult", "SettingSearchController", "make_bo",
           "make_de", "search_bo", "search_de"]

_SEED_MAX = 2**32 - 1
_HOLD_TOL = 1e-12
"""A steering delta this small is sent as zero: the controller holds the setting exactly."""


@dataclass(frozen=True)
class BOOptions(Options):
    """Bayesian optimization of the setting through Optuna."""

    label = "controller 'bo'"
    budget: int = option(100, "plant evaluations for the search (one per trial)", ge=1,
                         le=100_000)
    sampler: str = option("gp", "Optuna sampler: 'gp' (GPSampler) or 'tpe' (multivariate TPE)",
                          choices=("gp", "tpe"))
    seed: int = option(0, "seed of the sampler", ge=0, le=_SEED_MAX)
    n_startup: int = option(10, "random trials before the sampler's model is used", ge=1,
                            le=100_000)


@dataclass(frozen=True)
class DEOptions(Options):
    """Differential evolution of the setting through scipy (``best1bin``, batched generations)."""

    label = "controller 'de'"
    budget: int = option(600, "plant evaluations for the search (the last generation is cut "
                              "short to fit)", ge=1, le=100_000)
    popsize: int = option(5, "population size per setting coordinate (scipy's popsize; at "
                              "least 5 members)", ge=1, le=1000)
    seed: int = option(0, "seed of the population and the mutations", ge=0, le=_SEED_MAX)
    tol: float = option(0.0, "relative convergence tolerance (scipy's tol); 0 spends the whole "
                             "budget", ge=0, le=1)
    polish: bool = option(False, "finish with L-BFGS-B from the best member, within what the "
                                 "budget has left (its evaluations are counted)")


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The outcome of a setting search.

    Attributes
    ----------
    best:
        The best setting evaluated, in the unit box, shape ``(dim,)``.
    best_cost:
        Its cost (the objective's metric, e.g. FWHM in ps).
    evaluations:
        Objective evaluations really made (counted, ``<=`` the budget).
    history:
        The cost of every evaluation in order, shape ``(evaluations,)``.
    """

    best: NDArray[np.float64]
    best_cost: float
    evaluations: int
    history: NDArray[np.float64]

    @property
    def best_so_far(self) -> NDArray[np.float64]:
        """Lowest cost after each evaluation (non-finite costs never count as best)."""
        finite = np.where(np.isfinite(self.history), self.history, np.inf)
        out: NDArray[np.float64] = np.minimum.accumulate(finite)
        return out


class _BudgetSpent(Exception):
    """Raised by :class:`_Counted` to stop a search once its budget is spent."""


class _Counted:
    """The objective behind a budget: counts, records and keeps the best of every evaluation."""

    def __init__(self, objective: SettingObjective, budget: int) -> None:
        self.objective = objective
        self.budget = budget
        self.costs: list[float] = []
        self.best_setting: NDArray[np.float64] | None = None
        self.best_cost = np.inf

    def __call__(self, settings: NDArray[np.float64]) -> NDArray[np.float64]:
        """Costs of a batch ``(n, dim)`` (clipped to the unit box against round-off), non-finite
        ones as ``inf`` for the optimizer.

        Evaluates at most what the budget has left, then raises :class:`_BudgetSpent` when the
        batch was cut short or nothing was left.
        """
        batch = np.clip(np.atleast_2d(np.asarray(settings, dtype=np.float64)), 0.0, 1.0)
        left = self.budget - len(self.costs)
        if left <= 0:
            raise _BudgetSpent
        done = batch[:left]
        costs = np.asarray(self.objective(done), dtype=np.float64).reshape(len(done))
        self.costs.extend(costs.tolist())
        finite = np.where(np.isfinite(costs), costs, np.inf)
        i = int(np.argmin(finite))
        if finite[i] < self.best_cost:
            self.best_cost, self.best_setting = float(finite[i]), done[i].copy()
        if len(done) < len(batch):
            raise _BudgetSpent
        return finite

    def result(self) -> SearchResult:
        """What was evaluated; ``ValueError`` when no evaluation gave a finite cost."""
        if self.best_setting is None:
            raise ValueError(f"no finite {self.objective.metric} in {len(self.costs)} "
                             f"evaluations")
        return SearchResult(best=self.best_setting, best_cost=self.best_cost,
                            evaluations=len(self.costs),
                            history=np.asarray(self.costs, dtype=np.float64))


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - the tune extra is part of [all]
        raise ImportError("Bayesian optimization ('bo') needs optuna: "
                          "pip install 'ctrlbench[tune]'") from exc
    return optuna


def search_bo(objective: SettingObjective, opts: BOOptions) -> SearchResult:
    """Bayesian optimization of ``objective`` over the unit box with Optuna.

    One trial is one evaluation; ``opts.budget`` trials are asked and told in turn, the first
    ``opts.n_startup`` drawn at random. ``"gp"`` is ``GPSampler`` (Matern-5/2 GP with ARD, log
    EI, noise-free since the objective is deterministic); ``"tpe"`` is a multivariate
    ``TPESampler``. Deterministic per ``opts.seed``.

    Parameters
    ----------
    objective:
        The cost to minimize; evaluated one setting per call.
    opts:
        Budget, sampler, seed and random start.

    Returns
    -------
    SearchResult
        Best setting and cost, evaluations used, every cost in order.
    """
    optuna = _import_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # deterministic_objective is flagged experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if opts.sampler == "gp":
            sampler = optuna.samplers.GPSampler(
                seed=opts.seed, n_startup_trials=opts.n_startup, deterministic_objective=True)
        else:
            sampler = optuna.samplers.TPESampler(
                seed=opts.seed, n_startup_trials=opts.n_startup, multivariate=True)
        study = optuna.create_study(direction="minimize", sampler=sampler)
        counted = _Counted(objective, opts.budget)
        for _ in range(opts.budget):
            trial = study.ask()
            setting = np.array([trial.suggest_float(name, 0.0, 1.0) for name in objective.names])
            study.tell(trial, float(counted(setting[None, :])[0]))
    return counted.result()


def search_de(objective: SettingObjective, opts: DEOptions) -> SearchResult:
    """Differential evolution of ``objective`` over the unit box with scipy.

    ``max(5, popsize * dim)`` members (Latin hypercube start, ``best1bin``, deferred updating),
    each generation evaluated in one batched call. The search stops when the budget is spent
    (the last generation cut short), at convergence (``opts.tol``), or after polishing.

    Parameters
    ----------
    objective:
        The cost to minimize; evaluated a generation per call.
    opts:
        Budget, population, seed, tolerance and polishing.

    Returns
    -------
    SearchResult
        Best setting and cost, evaluations used, every cost in order.
    """
    from scipy.optimize import differential_evolution

    counted = _Counted(objective, opts.budget)
    members = max(5, opts.popsize * objective.dim)
    generations = max(1, -(-(opts.budget - members) // members))  # after the initial population

    def batch(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return counted(x.T)  # scipy sends (dim, S) when vectorized

    try:
        differential_evolution(batch, [(0.0, 1.0)] * objective.dim, popsize=opts.popsize,
                               maxiter=generations, tol=opts.tol, polish=opts.polish,
                               vectorized=True, updating="deferred", rng=opts.seed)
    except _BudgetSpent:
        pass
    return counted.result()


class SettingSearchController(FeedbackController):
    """Steers a plant to a searched best setting within its action bounds, then holds it.

    The search runs once, at construction (its evaluations are charged to the plant), not per
    episode. Each step sends ``clip(best - setting, low, high)`` for the current setting read
    from the observation, so the plant reaches the best setting in
    ``ceil(max |best - start| / bound)`` steps and then gets zero actions.

    Parameters
    ----------
    dt:
        Control period of the plant.
    result:
        The search's outcome.
    setting_index:
        Observation entries holding the current setting (action ``i`` moves entry ``i``).
    low, high:
        Action bounds, per setting coordinate.

    Attributes
    ----------
    result:
        The :class:`SearchResult`.
    evaluations:
        Plant evaluations the search used.
    best_cost:
        Cost at the best setting.
    """

    def __init__(self, dt: float, result: SearchResult, setting_index: tuple[int, ...],
                 low: Any, high: Any) -> None:
        super().__init__(dt)
        self.result = result
        self.evaluations = result.evaluations
        self.best_cost = result.best_cost
        self._index = np.asarray(setting_index, dtype=np.intp)
        self._low = np.asarray(low, dtype=np.float64)
        self._high = np.asarray(high, dtype=np.float64)

    def reset(self) -> None:
        """Nothing to reset: the search is not redone per episode."""

    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """The bounded step towards the best setting (zero once there)."""
        delta = self.result.best - np.asarray(observation, dtype=np.float64)[self._index]
        delta = np.where(np.abs(delta) <= _HOLD_TOL, 0.0, delta)
        out: NDArray[np.float64] = np.clip(delta, self._low, self._high)
        return out


def _controller(plant: Any, search: Any, opts: Options) -> SettingSearchController:
    objective: SettingObjective = plant.get_wrapper_attr("objective")()
    _, act = signals_of(plant)
    if len(act) != objective.dim:
        raise ValueError(f"{opts.label}: the plant has {len(act)} actions for "
                         f"{objective.dim} settings ({', '.join(objective.names)}); the actions "
                         f"must move the settings one to one")
    result = search(objective, opts)
    return SettingSearchController(plant_dt(plant), result, objective.setting_index,
                                   [s.low for s in act], [s.high for s in act])


def make_bo(plant: Any, opts: BOOptions) -> SettingSearchController:
    """Bayesian optimization on ``plant``'s setting objective (registry name ``"bo"``)."""
    return _controller(plant, search_bo, opts)


def make_de(plant: Any, opts: DEOptions) -> SettingSearchController:
    """Differential evolution on ``plant``'s setting objective (registry name ``"de"``)."""
    return _controller(plant, search_de, opts)
