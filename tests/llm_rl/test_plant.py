"""``ctrlbench/LLMEntropy-v0``: determinism, signals, actions refused by name, the PID design."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrlbench.options import OptionError
from ctrlbench.plant import ActionError
from ctrlbench.registry import make_controller, make_plant, smoke_options
from ctrlbench.simulate import simulate
from llm_rl.plant import NEUTRAL, SMOKE, EntropyPI, LLMEntropy, entropy_model

PLANT = "LLMEntropy-v0"
LN_V = math.log(23)


def _make(sft_dir: str, **options):
    return make_plant(PLANT, **{**SMOKE, "sft_dir": sft_dir, **options})


@pytest.fixture(scope="module")
def plant(tiny_sft_dir):
    """The smoke plant on the tests' tiny warm start (the same 1 x 16 policy, 5 SFT steps)."""
    env = _make(tiny_sft_dir, updates=2)
    yield env
    env.close()


@pytest.fixture(scope="module")
def idle(tiny_sft_dir):
    """A plant after its reset, never stepped: a bad action is refused before any update."""
    env = _make(tiny_sft_dir, updates=1000)
    env.reset(seed=0)
    yield env
    env.close()


def _run(env, seed, actions):
    obs, info = env.reset(seed=seed)
    rows = [(obs, 0.0, info)]
    for a in actions:
        obs, reward, _, _, info = env.step(np.array([a]))
        rows.append((obs, reward, info))
    return rows


def test_same_seed_same_trajectory(plant):
    a = _run(plant, 7, [0.0, 0.5])
    b = _run(plant, 7, [0.0, 0.5])
    for (oa, ra, ia), (ob, rb, ib) in zip(a, b):
        assert np.array_equal(oa, ob) and ra == rb and ia == ib
    c = _run(plant, 8, [0.0, 0.5])
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c))


def test_observation_layout_reward_and_episode_end(plant):
    obs, info = plant.reset(seed=3)
    names = [s.name for s in plant.observation_signals]
    assert names == ["entropy", "entropy_filtered", "reward_mean", "cov_mean", "entropy_ref"]
    assert plant.observation_signals[4].tracks == "entropy"
    assert [s.name for s in plant.action_signals] == ["entropy_coef"]
    assert plant.observation_space.contains(obs)
    assert obs[0] == pytest.approx(info["entropy"]) and obs[1] == obs[0]  # filter none
    assert (obs[2], obs[3], obs[4]) == (info["reward"], info["cov_mean"], 0.6)
    assert info["step"] == 0 and info["actuator"] == NEUTRAL["entropy_coef"]
    obs, reward, terminated, truncated, info = plant.step(np.array([0.25]))
    assert info["actuator"] == 0.25 and info["step"] == 1  # the action drove this update
    assert reward == pytest.approx(-abs(obs[0] - 0.6) / 0.6)
    assert (terminated, truncated) == (False, False)
    *_, truncated, _ = plant.step(np.array([0.0]))
    assert truncated  # updates = 2 after the reset update


@settings(max_examples=20, deadline=None)
@given(st.one_of(st.floats(max_value=-1e-3, allow_infinity=False),
                 st.floats(min_value=1.01, allow_infinity=False)))
def test_out_of_range_actions_are_refused_by_name(idle, value):
    with pytest.raises(ActionError, match=r"action out of range: entropy_coef=.* not in \[0, 1\]"):
        idle.step(np.array([value]))


def test_non_finite_and_malformed_actions_are_refused(tiny_sft_dir, idle):
    with pytest.raises(ActionError, match=r"non-finite action \[nan\].*entropy_coef"):
        idle.step(np.array([np.nan]))
    with pytest.raises(ActionError, match=r"shape \(2,\), expected \(1,\)"):
        idle.step(np.array([0.1, 0.2]))
    hot = _make(tiny_sft_dir, actuator="temperature").unwrapped  # validation needs no reset
    with pytest.raises(ActionError, match=r"temperature=0 not in \[0\.001, 1000\]"):
        hot.step(np.array([0.0]))
    hot.close()


@pytest.mark.parametrize(("actuator", "value"), [("temperature", 0.7), ("clip_cov_ratio", 0.3)])
def test_each_actuator_drives_the_update(tiny_sft_dir, actuator, value):
    env = _make(tiny_sft_dir, actuator=actuator, updates=1)
    _, info = env.reset(seed=1)
    assert info["actuator"] == NEUTRAL[actuator]
    _, _, _, truncated, info = env.step(np.array([value]))
    assert (info["actuator_name"], info["actuator"], truncated) == (actuator, value, True)
    if actuator == "temperature":
        assert info["temperature"] == value
    env.close()


def test_filtered_entropy_is_the_ema_of_the_readings(tiny_sft_dir):
    env = _make(tiny_sft_dir, filter="ema", alpha=0.5, updates=2, sft_steps=5)
    rows = _run(env, 2, [0.0, 0.0])
    h = [r[0][0] for r in rows]
    f = [r[0][1] for r in rows]
    assert f[0] == h[0]
    assert f[1] == pytest.approx(0.5 * h[1] + 0.5 * f[0]) and f[2] == pytest.approx(
        0.5 * h[2] + 0.5 * f[1])
    env.close()


def test_options_are_checked_by_name():
    with pytest.raises(OptionError, match=r"setpoint = 4\.0 is unreachable; valid: > 0 and "
                                          r"<= ln\(vocab size\) = 3\.135"):
        LLMEntropy(setpoint=4.0)
    with pytest.raises(OptionError, match=r"initial_value = 0\.0 is out of range; valid: None or "
                                          r"0\.001 \.\. 1000 \(actuator 'temperature'\)"):
        LLMEntropy(actuator="temperature", initial_value=0)
    with pytest.raises(OptionError, match=r"sensor\.alpha = 0\.5 has no effect"):
        LLMEntropy(alpha=0.5)
    with pytest.raises(OptionError, match=r"actuator = 'bonus'.*valid.*entropy_coef"):
        LLMEntropy(actuator="bonus")
    with pytest.raises(OptionError, match=r"task = 'sum' is not a registered task; valid: "
                                          r"add-n, countdown-lite"):
        LLMEntropy(task="sum")
    with pytest.raises(OptionError, match=r"device = 'gpu' is not a device; valid: one of cpu"):
        LLMEntropy(device="gpu")
    with pytest.raises(OptionError, match="unknown option"):
        make_plant(PLANT, stepz=3)


def test_model_discretises_to_the_first_order_update():
    """Zero-order hold over one update of the continuous model is H+ = a H + b u + c."""
    for a, b, c in [(0.9, 0.4, 0.03), (1.0, -0.2, 0.01), (1.05, 0.1, -0.02)]:
        m = entropy_model("entropy_coef", a, b, c, LN_V)
        x = m.step([0.8], [0.5], 1.0, 20)
        assert x[0] == pytest.approx(a * 0.8 + b * 0.5 + c, abs=1e-8)
    assert LLMEntropy(**smoke_options(PLANT)).model().states[0].name == "entropy"


def test_pid_design_defaults_and_direction(tiny_sft_dir, idle):
    env = idle
    pid = make_controller("pid", env)
    assert isinstance(pid, EntropyPI)
    assert (pid.pid.kp, pid.pid.ki) == (1.0, 0.1)
    pid.reset()
    low = np.array([0.3, 0.3, 0.5, 0.0, 0.6])  # H below H*: more bonus
    assert pid.predict(low)[0][0] == pytest.approx(1.0 * 0.3)  # kp e, integral from 0
    assert pid.predict(low)[0][0] == pytest.approx(1.0 * 0.3 + 0.1 * 0.3)  # + ki e dt
    raw = make_controller("pid", env, measurement="entropy", kp=2.0)
    raw.reset()
    assert raw.predict(np.array([0.9, 0.5, 0.5, 0.0, 0.6]))[0][0] == 0.0  # limited at 0
    hot = _make(tiny_sft_dir, actuator="temperature")
    t = make_controller("pid", hot)
    t.reset()
    assert t.predict(np.array([0.6, 0.6, 0.5, 0.0, 0.6]))[0][0] == 1.0  # bumpless from T = 1
    hot.close()


def test_pid_closes_the_loop(plant):
    traj = simulate(plant, make_controller("pid", plant), seed=0)
    assert len(traj) == 2 and traj.truncated
    assert np.all(np.isfinite(traj.observations))


def test_importing_the_plant_first_works_and_stays_light():
    """The hook lives in its own module: importing an llm_rl module that imports ctrlbench
    before ctrlbench still registers the plant, and none of it imports torch."""
    code = ("import sys, llm_rl.entropy_control, llm_rl.plant, ctrlbench\n"
            "assert 'ctrlbench/LLMEntropy-v0' in ctrlbench.plant_ids()\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
