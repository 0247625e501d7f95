"""The batched laser env: the same pulses as the single plant, autoreset, errors, SB3 adapter."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ctrlbench  # noqa: F401  (registers the plants)
from ctrlbench.plant import ActionError
from plants.laser.env import laser_reward
from plants.laser.options import LaserPulseOptions
from plants.laser.vector import LaserPulseVector

ID = "ctrlbench/LaserPulse-v0"


def make(n: int, **options: object) -> LaserPulseVector:
    env = gym.make_vec(ID, num_envs=n, vectorization_mode="vector_entry_point", **options)
    assert isinstance(env, LaserPulseVector)
    return env


def test_make_vec_uses_the_batched_env_with_the_registered_episode_length() -> None:
    env = make(4)
    assert env.max_episode_steps == 50
    assert env.observation_space.shape == (4, 3) and env.action_space.shape == (4, 3)


def test_a_step_equals_the_single_plant_physics_and_reward() -> None:
    env = make(5, reset_noise=0.02)  # starts close enough that no episode ends
    obs, _ = env.reset(seed=3)
    action = np.linspace(-0.01, 0.01, 15).reshape(5, 3)
    nxt, reward, term, trunc, info = env.step(action)
    assert not term.any()
    want_u = np.clip(obs + action, 0.0, 1.0)
    np.testing.assert_array_equal(nxt, want_u)
    for i in range(5):
        single = env.pulse_model.forward_normalized(want_u[i])
        assert info["fwhm_ps"][i] == single.fwhm
        want = laser_reward(single.fwhm, single.peak_ratio, LaserPulseOptions())
        assert reward[i] == pytest.approx(float(want), rel=0, abs=1e-12)
    assert not trunc.any()
    assert env.evaluations == 10  # reset + one step, five pulses each


def test_episodes_truncate_after_50_steps_and_restart_in_the_same_step() -> None:
    env = make(3, reset_noise=0.0)
    env.reset(seed=0)
    for k in range(50):
        obs, _, term, trunc, info = env.step(np.zeros((3, 3)))
        assert not term.any()
        assert trunc.all() == (k == 49)
    assert "final_obs" in info and info["_final_obs"].all()
    np.testing.assert_allclose(obs, info["final_obs"])  # no noise: the restart is the same
    _, _, _, trunc, _ = env.step(np.zeros((3, 3)))
    assert not trunc.any()


def test_far_settings_terminate_and_report_the_final_pulse() -> None:
    env = make(2, reset_noise=0.0)
    env.reset(seed=0)
    ended = False
    for _ in range(6):  # walk GDD to its lower bound: the pulse stretches past 20 ps
        _, _, term, _, info = env.step(np.array([[-0.1, 0, 0], [0, 0, 0]]))
        if term[0]:
            ended = True
            assert info["final_info"]["fwhm_ps"][0] >= 20.0
            assert not term[1]
            break
    assert ended


def test_deterministic_per_seed() -> None:
    a, b = make(4), make(4)
    rng = np.random.default_rng(1)
    acts = rng.uniform(-0.1, 0.1, (10, 4, 3))
    out = []
    for env in (a, b):
        obs, _ = env.reset(seed=11)
        rows = [obs]
        for act in acts:
            rows.append(env.step(act)[0])
        out.append(np.array(rows))
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("bad, word", [
    (np.full((2, 3), np.nan), "nan"),
    (np.full((2, 3), 0.2), "0.2"),
    (np.zeros((3, 3)), "shape"),
    ("fast", "string"),
])
def test_bad_actions_raise_naming_the_value(bad: object, word: str) -> None:
    env = make(2)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=word):
        env.step(bad)


def test_bad_options_and_sizes_raise() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        LaserPulseVector(num_envs=0)
    with pytest.raises(ValueError, match="b_integral"):
        LaserPulseVector(num_envs=2, b_integral=-1.0)


def test_sb3_adapter_reports_terminal_observations_like_sb3() -> None:
    pytest.importorskip("stable_baselines3")
    from controllers.sb3_vector import SB3VectorEnv
    from ctrlbench.wrappers import box_scaling

    venv = make(3, reset_noise=0.0)
    offset, scale = box_scaling(venv.single_observation_space)
    env = SB3VectorEnv(venv, offset, scale)
    env.seed(5)
    obs = env.reset()
    assert obs.dtype == np.float32 and np.all(np.abs(obs) <= 1.0)
    for _ in range(50):
        obs, reward, done, infos = env.step(np.zeros((3, 3)))
        assert reward.shape == (3,)
    assert done.all()
    assert all(info["TimeLimit.truncated"] for info in infos)
    assert infos[0]["terminal_observation"].shape == (3,)
    assert "fwhm_ps" in infos[0]
