"""Plant action validation and the registry."""

import gymnasium as gym
import numpy as np
import pytest

import ctrlbench
from ctrlbench.registry import CONTROLLERS, Registry, plant_ids, plant_options, smoke_options

MSD = "ctrlbench/MassSpringDamper-v0"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_is_rejected_before_the_solver(plant, bad):
    plant.reset(seed=0)
    with pytest.raises(ValueError, match="non-finite action"):
        plant.step(np.array([bad]))


def test_out_of_range_action_names_value_and_bounds(plant):
    plant.reset(seed=0)
    with pytest.raises(ValueError, match=r"F=11 not in \[-10, 10\]"):
        plant.step(np.array([11.0]))


def test_wrong_shape_action(plant):
    plant.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        plant.step(np.array([1.0, 2.0]))


def test_gymnasium_make_works_after_plugins_load():
    plant_ids()
    env = gym.make(MSD)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3,)


def test_unknown_plant_lists_valid_ids():
    with pytest.raises(KeyError, match="MassSpringDamper-v0") as exc:
        ctrlbench.make_plant("ctrlbench/MassSpringDampr-v0")
    assert "Did you mean" in str(exc.value)


def test_unknown_plant_option_lists_valid_options():
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['mass'\]; valid options"):
        ctrlbench.make_plant(MSD, mass=3.0)


def test_plant_options_reach_the_plant():
    env = ctrlbench.make_plant(MSD, k=7.0)
    assert env.unwrapped.model().params["k"] == 7.0
    assert "k" in plant_options(MSD).__dataclass_fields__


def test_unknown_controller_lists_valid_names():
    with pytest.raises(KeyError, match="valid controller names"):
        ctrlbench.make_controller("no-such-controller", None)


def test_registry_rejects_duplicates():
    reg = Registry("widget")
    reg.register("a", "math:sqrt", description="square root")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", "math:sqrt", description="again")
    assert reg.load("a")(4.0) == 2.0


def _applicable_plant(name):
    """The first registered plant controller ``name`` applies to."""
    from ctrlbench.capabilities import NotApplicableError
    from ctrlbench.registry import check_applicable

    for pid in plant_ids():
        plant = ctrlbench.make_plant(pid, **smoke_options(pid))
        try:
            check_applicable(name, plant)
        except NotApplicableError:
            plant.close()
            continue
        return plant
    raise AssertionError(f"no registered plant for {name!r}")


@pytest.mark.parametrize("name", CONTROLLERS.names())
def test_every_controller_factory_rejects_unknown_options(name):
    with pytest.raises(TypeError, match=r"unknown option|takes no options"):
        ctrlbench.make_controller(name, _applicable_plant(name), definitely_not_an_option=1)


@pytest.mark.parametrize("plant_id", plant_ids())
def test_every_plant_rejects_unknown_options(plant_id):
    with pytest.raises(TypeError, match="unknown option"):
        ctrlbench.make_plant(plant_id, definitely_not_an_option=1)


def test_option_values_are_type_checked():
    with pytest.raises(TypeError, match=r"\.k = 'stiff' has the wrong type; valid: float"):
        ctrlbench.make_plant(MSD, k="stiff")
    with pytest.raises(TypeError, match=r"bandwidth = True has the wrong type; valid: float"):
        ctrlbench.make_controller("pid", ctrlbench.make_plant(MSD), bandwidth=True)
    with pytest.raises(ValueError, match=r"m = 0 is out of range; valid: finite >= 0.001 and <="):
        ctrlbench.make_plant(MSD, m=0)
    assert ctrlbench.make_plant(MSD, k=3).unwrapped.model().params["k"] == 3  # int is a float
