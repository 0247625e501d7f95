"""The Python API under bad input: one clear, typed error naming the value, never a traceback
from deep inside a library and never a silent result."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ctrlbench.registry import make_controller, make_plant
from ctrlbench.simulate import simulate

MSD = "ctrlbench/MassSpringDamper-v0"


@pytest.fixture
def loop() -> tuple[Any, Any]:
    plant = make_plant(MSD)
    return plant, make_controller("pid", plant)


@pytest.mark.parametrize("steps", [0, -1, 2.5, "5", True])
def test_simulate_steps_must_be_a_positive_integer(loop, steps):
    with pytest.raises(ValueError, match=r"steps must be an integer >= 1"):
        simulate(*loop, steps=steps)


@pytest.mark.parametrize("seed", [-1, 1.5, "a", False])
def test_simulate_seed_must_be_a_non_negative_integer(loop, seed):
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0"):
        simulate(*loop, steps=2, seed=seed)


@pytest.mark.parametrize("plant", [None, 3, "ctrlbench/MassSpringDamper-v0"])
def test_make_controller_needs_a_plant(plant):
    with pytest.raises(TypeError, match="needs a plant"):
        make_controller("pid", plant)


@pytest.mark.parametrize("obs", [np.zeros(7), np.zeros((2, 3)), "abc", [None, 1, 2], 1.0])
def test_controllers_refuse_observations_of_the_wrong_shape_or_type(loop, obs):
    with pytest.raises(ValueError, match="observation"):
        loop[1].predict(obs)


def test_controllers_accept_the_plant_observation_and_a_batch_of_one(loop):
    plant, ctrl = loop
    obs, _ = plant.reset(seed=0)
    a, _ = ctrl.predict(obs)
    b, _ = ctrl.predict(obs[None, :].tolist())
    assert a.shape == (1,) and b.shape == (1, 1)


def test_parse_flags_builds_options_and_fills_a_preset_only_where_not_given():
    from dataclasses import dataclass

    import pytest

    from ctrlbench.options import OptionError, Options, option, parse_flags

    @dataclass(frozen=True)
    class Flags(Options):
        label = "flags"
        runs: int = option(100, "runs", ge=1)
        rate: float = option(0.5, "rate", gt=0)
        smoke: bool = option(False, "tiny sizes")

    assert parse_flags(Flags, []) == Flags()
    tiny = {"runs": 2, "rate": 0.1}
    assert parse_flags(Flags, ["--smoke", "--rate", "0.3"], presets={"smoke": tiny}) == Flags(
        runs=2, rate=0.3, smoke=True)
    assert parse_flags(Flags, ["--smoke", "false"], presets={"smoke": tiny}) == Flags()
    with pytest.raises(OptionError, match="runs"):
        parse_flags(Flags, ["--runs", "0"])
