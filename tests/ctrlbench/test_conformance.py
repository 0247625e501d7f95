"""Conformance over the whole plant registry (Gymnasium's ``test_all_env_api`` pattern)."""

import numpy as np
import pytest

from ctrlbench.check import check_plant
from ctrlbench.registry import CONTROLLERS, make_controller, make_plant, plant_ids
from ctrlbench.simulate import simulate


@pytest.mark.parametrize("plant_id", plant_ids())
def test_registered_plant_passes_every_check(plant_id):
    report = check_plant(plant_id, steps=100, seed=0)
    assert set(report.results) == {"signals", "gymnasium.check_env", "sb3.check_env",
                                   "determinism"}
    assert report.ok, report.results


@pytest.mark.parametrize("plant_id", plant_ids())
@pytest.mark.parametrize("controller", CONTROLLERS.names())
def test_every_controller_closes_the_loop_on_every_plant(plant_id, controller):
    plant = make_plant(plant_id)
    ctrl = make_controller(controller, plant)
    traj = simulate(plant, ctrl, steps=50, seed=1)
    assert len(traj) == 50 and np.all(np.isfinite(traj.actions))
    assert np.all(np.isfinite(traj.observations))


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
