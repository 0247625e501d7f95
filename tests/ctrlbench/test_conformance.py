"""Conformance over the registry, applicable pairs only (Gymnasium's ``test_all_env_api``).

A new plant family and a new controller (``tests/fixtures/tank.py``) are registered through the
public API alone and go through the same checks as the built-in ones.
"""

import numpy as np
import pytest

import ctrlbench
from ctrlbench.capabilities import NotApplicableError, missing, provides_of
from ctrlbench.check import check_plant
from ctrlbench.registry import (
    CONTROLLERS,
    PLANTS,
    make_controller,
    make_plant,
    plant_ids,
    smoke_options,
)
from ctrlbench.simulate import simulate
from tests.fixtures import tank

if "ctrlbench/TestTank-v0" not in plant_ids():
    tank.register()  # the fixture family joins the registry for this whole test session


def _pairs():
    for pid in plant_ids():
        for name in CONTROLLERS.names():
            lacks = missing(CONTROLLERS.entry(name).resolved_requires(), PLANTS.entry(pid).provides)
            yield pid, name, lacks


APPLICABLE = [(p, c) for p, c, lacks in _pairs() if not lacks]
NOT_APPLICABLE = [(p, c) for p, c, lacks in _pairs() if lacks]


@pytest.mark.parametrize("plant_id", plant_ids())
def test_registered_plant_passes_every_check(plant_id):
    report = check_plant(plant_id, steps=100, seed=0, **smoke_options(plant_id))
    assert set(report.results) == {"signals", "gymnasium.check_env", "sb3.check_env",
                                   "determinism"}
    assert report.ok, report.results


@pytest.mark.parametrize("plant_id", plant_ids())
def test_registration_tells_the_truth_about_the_plant(plant_id):
    env = make_plant(plant_id, **smoke_options(plant_id))
    assert provides_of(env) == PLANTS.entry(plant_id).provides
    env.close()


#: Options a controller needs beyond its defaults: a learned one needs its trained model; a
#: setting search a small budget (its default is a study's, minutes with the GP).
NEEDS = {
    "bo": lambda request: {"budget": 8},
    "de": lambda request: {"budget": 45},
    "lstmc": lambda request: {"path": str(request.getfixturevalue("lstmc_model_path"))},
    "sb3": lambda request: {"path": request.getfixturevalue("sb3_model_for")(
        request.node.callspec.params["plant_id"])},
}


@pytest.mark.parametrize(("plant_id", "controller"), APPLICABLE)
def test_every_applicable_controller_closes_the_loop(plant_id, controller, request):
    plant = make_plant(plant_id, **smoke_options(plant_id))
    extra = NEEDS[controller](request) if controller in NEEDS else {}
    ctrl = make_controller(controller, plant, **extra)
    traj = simulate(plant, ctrl, steps=50, seed=1)
    # a relay at full duty trips the DC motor's current limit at once, and a smoke-size plant
    # may have a shorter time limit (LLMEntropy: 4 updates): both legal early ends
    assert len(traj) == 50 or traj.terminated or traj.truncated
    assert np.all(np.isfinite(traj.actions))
    assert np.all(np.isfinite(traj.observations))


@pytest.mark.parametrize(("plant_id", "controller"), NOT_APPLICABLE)
def test_inapplicable_pairs_are_refused_by_name(plant_id, controller):
    with pytest.raises(NotApplicableError, match=f"{controller!r} is not applicable to"):
        make_controller(controller, make_plant(plant_id, **smoke_options(plant_id)))


def test_fixture_family_joins_through_the_public_api():
    assert ("ctrlbench/TestTank-v0", "test-bangbang") in APPLICABLE
    assert ("ctrlbench/TestTank-v0", "pid") in APPLICABLE  # its own PID design, one line
    assert ("ctrlbench/TestTank-v0", "lqr") in APPLICABLE  # operating point from equilibrium()
    assert ("ctrlbench/TestTankBlackBox-v0", "lqr") in NOT_APPLICABLE
    # the PI design regulates the nonlinear tank to its set-point
    plant = make_plant("ctrlbench/TestTank-v0")
    traj = simulate(plant, make_controller("pid", plant, bandwidth=0.05), seed=0)
    assert abs(traj.signal("h")[-1] - 0.5) < 0.01


def test_not_applicable_errors_name_what_is_missing():
    with pytest.raises(NotApplicableError, match=r"lacks a model\(\)"):
        make_controller("lqr", make_plant("ctrlbench/TestTankBlackBox-v0"))
    with pytest.raises(NotApplicableError, match=r"exactly 1 input\(s\) \(it has 2\)"):
        make_controller("test-bangbang", make_plant("ctrlbench/PMSMCurrent-v0"))


def test_list_prints_the_applicability_matrix(capsys):
    from ctrlbench.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "applicability (plant x controller)" in out
    assert "lqr on ctrlbench/TestTankBlackBox-v0: lacks a model()" in out


class _Unseeded:
    """A mass-spring-damper whose reference ignores the seed (a planted determinism fault)."""

    @staticmethod
    def make():
        from plants.linear.env import MassSpringDamper

        class Unseeded(MassSpringDamper):
            def reset(self, *, seed=None, options=None):
                _, info = super().reset(seed=seed, options=options)
                self._ref = float(np.random.default_rng().uniform(-1, 1))
                return self._obs(), info

        return Unseeded()


def test_check_catches_a_plant_that_ignores_its_seed():
    report = check_plant(_Unseeded.make, steps=20)
    assert report.results["determinism"] is not None
    assert "same seed 0 gave different observations" in report.results["determinism"]
    assert not report.ok


def test_gymnasium_make_works_in_a_fresh_interpreter():
    import subprocess
    import sys

    code = ("import ctrlbench, gymnasium; gymnasium.make('ctrlbench/DCSpeed-v0').close(); "
            "gymnasium.make('ctrlbench:ctrlbench/MassSpringDamper-v0').close(); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "ok"
    assert ctrlbench.make_plant("MassSpringDamper-v0").observation_signals[2].tracks == "x"
