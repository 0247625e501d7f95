"""Setting search (``"bo"``, ``"de"``): a hand-checkable bowl, exact evaluation counts, seeds,
and the closed loop on ``LaserPulse-v0``."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from numpy.typing import NDArray

from controllers.setting_search import (
    BOOptions,
    DEOptions,
    SearchResult,
    search_bo,
    search_de,
)
from ctrlbench.capabilities import NotApplicableError
from ctrlbench.objective import SettingObjective
from ctrlbench.options import OptionError
from ctrlbench.registry import make_controller, make_plant
from ctrlbench.simulate import simulate

MINIMUM = np.array([0.3, 0.6, 0.45])
FLOOR = 1.0


class Bowl:
    """``1 + |x - (0.3, 0.6, 0.45)|^2``, minimum 1 there; counts the settings it evaluates."""

    def __init__(self) -> None:
        self.evaluated = 0
        self.calls = 0

    def __call__(self, settings: NDArray[np.float64]) -> NDArray[np.float64]:
        assert settings.ndim == 2 and settings.shape[1] == 3
        self.calls += 1
        self.evaluated += len(settings)
        out: NDArray[np.float64] = FLOOR + np.sum((settings - MINIMUM) ** 2, axis=1)
        return out

    def objective(self) -> SettingObjective:
        return SettingObjective(names=("a", "b", "c"), evaluate=self, setting_index=(0, 1, 2),
                                metric="bowl [1]")


def _check_counts(result: SearchResult, bowl: Bowl, budget: int) -> None:
    assert result.evaluations == bowl.evaluated <= budget
    assert result.history.shape == (result.evaluations,)
    assert result.best_cost == result.history.min() == result.best_so_far[-1]
    assert np.all(np.diff(result.best_so_far) <= 0)
    assert result.best_cost == pytest.approx(FLOOR + np.sum((result.best - MINIMUM) ** 2))


def test_de_finds_the_bowl_minimum_in_batched_generations() -> None:
    bowl = Bowl()
    result = search_de(bowl.objective(), DEOptions(budget=300, seed=0))
    _check_counts(result, bowl, 300)
    assert result.evaluations == 300  # tol 0: the whole budget
    assert bowl.calls == 300 // 15  # one call per generation of 15 members
    assert np.abs(result.best - MINIMUM).max() < 0.03
    assert result.best_cost - FLOOR < 1e-3


@pytest.mark.parametrize(("budget", "popsize"), [(47, 5), (7, 5), (1, 1)])
def test_de_stops_exactly_at_the_budget(budget: int, popsize: int) -> None:
    bowl = Bowl()
    result = search_de(bowl.objective(), DEOptions(budget=budget, popsize=popsize))
    _check_counts(result, bowl, budget)
    assert result.evaluations == budget  # the last generation (or the first) cut short


def test_de_early_convergence_and_polish_are_counted() -> None:
    bowl = Bowl()
    result = search_de(bowl.objective(), DEOptions(budget=5000, tol=0.01, polish=True))
    _check_counts(result, bowl, 5000)
    assert result.evaluations < 5000  # converged, then L-BFGS-B used what it needed
    assert result.best_cost - FLOOR < 1e-8  # the polish lands on the minimum
    bowl = Bowl()
    capped = search_de(bowl.objective(), DEOptions(budget=200, tol=0.01, polish=True))
    _check_counts(capped, bowl, 200)


def test_bo_gp_finds_the_bowl_minimum() -> None:
    bowl = Bowl()
    result = search_bo(bowl.objective(), BOOptions(budget=12, n_startup=4, seed=0))
    _check_counts(result, bowl, 12)
    assert result.evaluations == bowl.calls == 12  # one setting per trial
    assert np.abs(result.best - MINIMUM).max() < 0.1


def test_bo_tpe_counts_and_improves_on_its_random_start() -> None:
    bowl = Bowl()
    result = search_bo(bowl.objective(), BOOptions(budget=60, sampler="tpe", seed=0))
    _check_counts(result, bowl, 60)
    assert result.evaluations == 60
    assert result.best_cost < result.best_so_far[9]  # the model beats the 10 random trials
    assert result.best_cost - FLOOR < 0.02


@pytest.mark.parametrize(("search", "opts", "other"), [
    (search_de, DEOptions(budget=60, seed=3), DEOptions(budget=60, seed=4)),
    (search_bo, BOOptions(budget=20, sampler="tpe", seed=3),
     BOOptions(budget=20, sampler="tpe", seed=4)),
])
def test_same_seed_same_search(search, opts, other) -> None:  # type: ignore[no-untyped-def]
    first, again, third = (search(Bowl().objective(), o) for o in (opts, opts, other))
    np.testing.assert_array_equal(first.history, again.history)
    np.testing.assert_array_equal(first.best, again.best)
    assert not np.array_equal(first.history, third.history)


def test_de_on_the_laser_steers_to_its_best_setting_within_the_action_bounds() -> None:
    plant = make_plant("LaserPulse-v0")
    before = plant.unwrapped.evaluations
    ctrl = make_controller("de", plant, budget=150)
    assert ctrl.evaluations == 150 == plant.unwrapped.evaluations - before  # charged to it
    assert ctrl.best_cost == ctrl.result.best_cost < 1.98  # beats linear compensation
    traj = simulate(plant, ctrl, steps=8, seed=0)
    assert np.all(np.abs(traj.actions) <= 0.1)
    start, best = traj.observations[0], ctrl.result.best
    steps = int(np.ceil(np.abs(best - start).max() / 0.1 - 1e-9))
    assert steps <= 6
    np.testing.assert_allclose(traj.observations[steps:], np.tile(best, (9 - steps, 1)),
                               atol=1e-12)
    assert np.all(traj.actions[steps:] == 0.0)  # holds once there
    fwhm_start = float(plant.unwrapped.objective()(start))
    assert traj.info["fwhm_ps"][-1] <= fwhm_start
    assert traj.info["fwhm_ps"][-1] == pytest.approx(ctrl.best_cost, rel=1e-9)
    ctrl.reset()  # no new search per episode
    assert ctrl.evaluations == 150


@pytest.mark.parametrize(("name", "options", "match"), [
    ("de", {"budget": 0}, r"controller 'de'\.budget = 0 is out of range"),
    ("bo", {"budget": 0}, r"controller 'bo'\.budget = 0 is out of range"),
    ("bo", {"sampler": "foo"}, r"controller 'bo'\.sampler = 'foo'.*'gp', 'tpe'"),
])
def test_bad_options_are_named(name: str, options: dict[str, object], match: str) -> None:
    with pytest.raises(OptionError, match=match):
        make_controller(name, make_plant("LaserPulse-v0"), **options)


@pytest.mark.parametrize("name", ["bo", "de"])
def test_a_plant_without_an_objective_is_refused(name: str) -> None:
    with pytest.raises(NotApplicableError, match=rf"'{name}' is not applicable.*setting objective"):
        make_controller(name, make_plant("MassSpringDamper-v0"))


def test_missing_optuna_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"pip install 'ctrlbench\[tune\]'"):
        search_bo(Bowl().objective(), BOOptions(budget=2))
