"""Plants under bad input: actions, options, episode ends, references and interrupts.

Property: every call either succeeds with finite observations or raises a clear, typed error
(:class:`~ctrlbench.plant.ActionError`, :class:`~ctrlbench.options.OptionError`,
:class:`~ctrlbench.plant.EpisodeEndedError`) naming the bad value; never another exception, never
NaN in an observation.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import threading
import time
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ctrlbench.interrupt import Interrupted, handle_signals
from ctrlbench.options import OptionError
from ctrlbench.plant import ActionError, EpisodeEndedError
from ctrlbench.registry import (
    make_controller,
    make_plant,
    plant_ids,
    plant_options,
    smoke_options,
)
from ctrlbench.simulate import simulate
from ctrlbench.wrappers import PlantView, ReferenceInObs

PLANTS = [p for p in plant_ids() if p.startswith("ctrlbench/")]
MSD = "ctrlbench/MassSpringDamper-v0"

_cache: dict[str, Any] = {}


def _plant(pid: str) -> Any:
    """One plant per id for the whole module (GEM construction costs ~50 ms)."""
    if pid not in _cache:
        _cache[pid] = make_plant(pid, **smoke_options(pid))
    env = _cache[pid]
    env.reset(seed=0)
    return env


def _mid(env: Any) -> np.ndarray:
    space = env.action_space
    return np.asarray((space.low + space.high) / 2, dtype=np.float64)


# -- actions ---------------------------------------------------------------------------------
BAD_ACTIONS = {
    "string": lambda a: "0.5",
    "string-list": lambda a: ["0.5"] * a.size,
    "bool": lambda a: True,
    "bool-array": lambda a: np.zeros(a.shape, dtype=bool),
    "bool-in-list": lambda a: [True] + [0.0] * (a.size - 1),
    "complex": lambda a: a.astype(complex) + 1j,
    "batch-of-one": lambda a: a[None, :],
    "scalar": lambda a: 0.0,
    "none": lambda a: None,
    "object": lambda a: object(),
    "ragged": lambda a: [[0.0], [0.0, 1.0]],
    "nan": lambda a: np.full(a.shape, np.nan),
    "inf": lambda a: np.full(a.shape, np.inf),
    "huge": lambda a: np.full(a.shape, 1e300),
    "too-long": lambda a: np.zeros(a.size + 1),
    "empty": lambda a: np.zeros(0),
    "dict": lambda a: {"u": 0.0},
}


@pytest.mark.parametrize("pid", PLANTS)
@pytest.mark.parametrize("case", sorted(BAD_ACTIONS))
def test_bad_actions_are_refused_with_a_clear_error(pid: str, case: str) -> None:
    env = _plant(pid)
    action = BAD_ACTIONS[case](_mid(env))
    with pytest.raises(ActionError) as err:
        env.step(action)
    assert "action" in str(err.value)
    # the refused action changed nothing: a valid step still works
    obs, *_ = env.step(_mid(env))
    assert np.all(np.isfinite(obs))


@pytest.mark.parametrize("pid", PLANTS)
@pytest.mark.parametrize("convert", [list, tuple, lambda a: a.astype(np.float32),
                                     lambda a: a.astype(np.int64)])
def test_real_numeric_actions_of_the_declared_shape_are_accepted(pid: str, convert: Any) -> None:
    env = _plant(pid)
    space = env.action_space
    obs, *_ = env.step(convert(np.clip(np.zeros(space.shape), space.low, space.high)))
    assert np.all(np.isfinite(obs))


@pytest.mark.parametrize("pid", PLANTS)
@given(data=st.data())
def test_fuzzed_actions_step_or_raise_action_error(pid: str, data: st.DataObject) -> None:
    env = _plant(pid)
    n = env.action_space.shape[0]
    dtype = data.draw(st.sampled_from([np.float64, np.float32, np.int32, np.bool_,
                                       np.complex128]))
    shape = data.draw(st.sampled_from([(n,), (n,), (1, n), (n + 1,), ()]))
    action = data.draw(hnp.arrays(dtype, shape))
    try:
        obs, reward, terminated, truncated, _ = env.step(action)
    except ActionError as exc:
        assert str(exc)
        return
    except EpisodeEndedError:
        env.reset(seed=0)
        return
    assert action.shape == (n,) and action.dtype.kind in "fiu"
    assert np.all(np.isfinite(obs)) and math.isfinite(float(reward))
    if terminated or truncated:
        env.reset(seed=0)


# -- options ---------------------------------------------------------------------------------
_ANY = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.booleans(),
    st.text(max_size=6),
    st.none(),
    st.lists(st.floats(), max_size=2),
)


@pytest.mark.parametrize("pid", PLANTS)
@given(data=st.data())
def test_fuzzed_plant_options_build_a_finite_plant_or_raise_option_error(
    pid: str, data: st.DataObject
) -> None:
    cls = plant_options(pid)
    names = [f.name for f in dataclasses.fields(cls)] if cls is not None else []
    keys = data.draw(st.lists(st.sampled_from([*names, "bogus"]), max_size=3, unique=True))
    opts = {k: data.draw(_ANY) for k in keys}
    try:
        env = make_plant(pid, **{**smoke_options(pid), **opts})
    except OptionError as exc:
        bad = [k for k in keys if k in str(exc)]
        assert bad, f"error does not name the option: {exc}"
        return
    try:
        obs, _ = env.reset(seed=0)
        assert np.all(np.isfinite(obs))
        for _ in range(3):
            obs, _, terminated, truncated, _ = env.step(_mid(env))
            assert np.all(np.isfinite(obs)), f"{pid} {opts} gave {obs}"
            if terminated or truncated:
                break
    finally:
        env.close()


@pytest.mark.parametrize(("pid", "opts", "match"), [
    (MSD, {"m": 0}, "m = 0"),
    (MSD, {"m": float("nan")}, "m = nan"),
    (MSD, {"dt": -1.0}, "dt"),
    ("ctrlbench/PMSMCurrent-v0", {"omega": 1e9}, "omega"),
    ("ctrlbench/PMSMCurrent-v0", {"i_sd_step": -300.0, "i_sq_step": 300.0}, "magnitude"),
    ("ctrlbench/DCSpeed-v0", {"step_to": 1e4}, "step_to"),
    ("ctrlbench/DCSpeed-v0", {"reference": "nope"}, "reference"),
])
def test_bad_plant_options_name_field_and_valid_range(pid: str, opts: dict[str, Any],
                                                      match: str) -> None:
    with pytest.raises(OptionError, match=match):
        make_plant(pid, **opts)


# -- episode ends ----------------------------------------------------------------------------
def test_step_after_truncation_is_refused_until_reset() -> None:
    env = PlantView(gym.make(MSD, max_episode_steps=3))
    env.reset(seed=0)
    for _ in range(3):
        *_, truncated, _ = env.step(np.zeros(1))
    assert truncated
    with pytest.raises(EpisodeEndedError, match=r"truncated.*reset"):
        env.step(np.zeros(1))
    env.reset(seed=1)
    env.step(np.zeros(1))


@pytest.mark.parametrize("via_make", [True, False])
def test_step_after_termination_is_refused_alike_on_every_path(via_make: bool) -> None:
    env = make_plant("ctrlbench/DCSpeed-v0", reference="step", step_to=0.0)
    plant = env if via_make else env.unwrapped
    plant.reset(seed=0)
    for _ in range(20_000):  # full voltage at standstill drives the current past its limit
        _, _, terminated, truncated, _ = plant.step(np.ones(1))
        if terminated or truncated:
            break
    assert terminated
    with pytest.raises(EpisodeEndedError, match="terminated"):
        plant.step(np.zeros(1))
    plant.reset(seed=0)
    plant.step(np.zeros(1))
    env.close()


# -- references ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1e9, float("nan")])
def test_reference_outside_its_bounds_is_refused(value: float) -> None:
    env = ReferenceInObs(make_plant(MSD), lambda t: [value], tracks=["x"], names=["x_set"])
    with pytest.raises(ValueError, match="x_set"):
        env.reset(seed=0)


# -- interrupts ------------------------------------------------------------------------------
class _SwallowingPlant(gym.Wrapper[Any, Any, Any, Any]):
    """Raises SIGINT inside a step and swallows it, as scipy's ``ode`` callbacks do."""

    def __init__(self, env: Any, at: int) -> None:
        super().__init__(env)
        self.k, self.at = 0, at

    def step(self, action: Any) -> Any:
        self.k += 1
        if self.k == self.at:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
            except KeyboardInterrupt:
                pass
        return self.env.step(action)


def test_interrupt_swallowed_by_a_solver_still_stops_the_loop() -> None:
    env = PlantView(_SwallowingPlant(gym.make(MSD), at=5))
    ctrl = make_controller("pid", env)
    with handle_signals(), pytest.raises(Interrupted):
        simulate(env, ctrl, steps=100, seed=0)
    assert env.env.k == 5  # stopped right after the step that swallowed it


def test_ctrl_c_during_a_gem_episode_stops_it() -> None:
    env = make_plant("ctrlbench/PMSMCurrent-v0")
    ctrl = make_controller("pid", env)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    with handle_signals(), pytest.raises(Interrupted):
        timer.start()
        simulate(env, ctrl, steps=None, seed=0)  # 10,000 steps, ~1.5 s uninterrupted
    assert time.perf_counter() - t0 < 1.2
    env.close()
