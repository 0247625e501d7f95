"""``ctrlbench.surrogate.SurrogateEnv``: gymnasium and SB3 env checks, seeding, action
validation, termination and truncation."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctrlbench.options import OptionError
from ctrlbench.plant import ActionError, EpisodeEndedError
from ctrlbench.surrogate import SurrogateEnv, state_sampler

OBS = gym.spaces.Box(np.array([-1.0, -2.0], dtype=np.float32),
                     np.array([1.0, 2.0], dtype=np.float32), dtype=np.float32)
ACT = gym.spaces.Box(-2.0, 2.0, (1,), dtype=np.float32)


class Linear:
    """``x' = A x + B u`` (stable), batched."""

    A = np.array([[0.9, 0.1], [-0.2, 0.8]])
    B = np.array([[0.0], [0.3]])

    def predict(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return np.asarray(x) @ self.A.T + np.asarray(u) @ self.B.T


class Constant:
    """Always predicts ``value`` (to trigger terminations)."""

    def __init__(self, value: list[float]) -> None:
        self.value = np.array(value)

    def predict(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self.value.copy()


def quadratic(x: np.ndarray, u: np.ndarray, xn: np.ndarray) -> float:
    return -float(xn @ xn + 0.01 * u @ u)


def make(model: object = None, **kw: object) -> SurrogateEnv:
    return SurrogateEnv(model or Linear(), OBS, ACT, quadratic,  # type: ignore[arg-type]
                        lambda rng: rng.uniform(-0.5, 0.5, 2), **kw)  # type: ignore[arg-type]


def test_gymnasium_and_sb3_env_checkers_pass() -> None:
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # asymmetric-box / no-spec advice
        check_env(make(max_steps=20), skip_render_check=True)
        sb3_check_env(make(max_steps=20))


def test_spaces_are_copies_and_observations_have_their_dtype() -> None:
    env = make()
    assert env.observation_space == OBS and env.observation_space is not OBS
    assert env.action_space == ACT and env.action_space is not ACT
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs in env.observation_space and info["steps"] == 0
    obs2, *_ = env.step(np.array([0.5], dtype=np.float32))
    assert obs2.dtype == np.float32 and obs2 is not obs


def test_seeded_reset_and_rollout_are_deterministic() -> None:
    def rollout(seed: int) -> list[np.ndarray]:
        env = make()
        out = [env.reset(seed=seed)[0]]
        out += [env.step(np.array([1.0]))[0] for _ in range(5)]
        out.append(env.reset()[0])  # unseeded reset continues the seeded generator
        return out

    a, b, c = rollout(3), rollout(3), rollout(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_step_follows_the_model_and_the_reward() -> None:
    env = make()
    env.reset(seed=0)
    x = env.state
    u = np.array([0.7])
    obs, r, term, trunc, _ = env.step(u)
    want = Linear().predict(x, u)
    np.testing.assert_allclose(env.state, want)
    np.testing.assert_allclose(obs, want.astype(np.float32))
    assert r == pytest.approx(quadratic(x, u, want)) and not term and not trunc


@pytest.mark.parametrize(("action", "words"), [
    (np.array([np.nan]), ["non-finite", "u0=nan", "[-2, 2]"]),
    (np.array([np.inf]), ["non-finite", "u0=inf"]),
    (np.array([2.5]), ["out of range", "u0=2.5", "[-2, 2]"]),
    (np.array([-3.0]), ["out of range", "u0=-3", "[-2, 2]"]),
    (np.zeros(2), ["shape (2,)", "expected (1,)"]),
    (np.zeros((1, 1)), ["shape (1, 1)"]),
    ("1.0", ["string"]),
    ([True], ["True"]),
])
def test_bad_actions_raise_value_errors_naming_the_value(action: object, words: list[str]
                                                        ) -> None:
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError) as err:
        env.step(action)
    assert isinstance(err.value, ActionError)
    for w in words:
        assert w in str(err.value)


def test_action_names_appear_in_errors_and_bounds_have_a_tolerance() -> None:
    env = make(action_names=("torque",))
    env.reset(seed=0)
    with pytest.raises(ActionError, match="torque=9"):
        env.step(np.array([9.0]))
    env.step(np.array([2.0 + 1e-9]))  # float rounding past a bound is clipped, not rejected
    assert np.all(np.abs(env.state) <= [1.0, 2.0])


@given(st.floats(-2.0, 2.0, width=32))
def test_any_finite_action_inside_the_box_is_accepted(a: float) -> None:
    env = make(max_steps=3)
    env.reset(seed=0)
    obs, r, *_ = env.step(np.array([a], dtype=np.float32))
    assert obs in env.observation_space and np.isfinite(float(r))


@given(st.one_of(st.floats(2.001, 1e30), st.floats(-1e30, -2.001),
                 st.sampled_from([np.nan, np.inf, -np.inf])))
def test_any_action_outside_the_box_is_rejected(a: float) -> None:
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="u0="):
        env.step(np.array([a]))


def test_truncation_after_max_steps_and_no_step_after_the_end() -> None:
    env = make(max_steps=4)
    with pytest.raises(EpisodeEndedError, match="not started"):
        env.step(np.zeros(1))
    env.reset(seed=0)
    flags = [env.step(np.zeros(1))[2:4] for _ in range(4)]
    assert flags == [(False, False)] * 3 + [(False, True)]
    with pytest.raises(EpisodeEndedError, match="reset"):
        env.step(np.zeros(1))
    env.reset()
    assert env.step(np.zeros(1))[3] is False
    assert env.total_steps == 5


@pytest.mark.parametrize(("value", "terminated", "reason"), [
    ([1.15, 0.0], False, None),  # within 10 % of the width (2) past the bound: clipped
    ([1.25, 0.0], True, "left the observation box"),
    ([0.0, -2.5], True, "left the observation box"),  # width 4: margin 0.4
    ([np.nan, 0.0], True, "non-finite prediction"),
    ([0.0, np.inf], True, "non-finite prediction"),
])
def test_termination_when_the_prediction_leaves_the_box(value: list[float], terminated: bool,
                                                        reason: str | None) -> None:
    env = make(Constant(value), max_steps=10, termination_reward=-5.0)
    env.reset(seed=0)
    obs, r, term, trunc, info = env.step(np.zeros(1))
    assert term is terminated and not trunc and info.get("termination") == reason
    assert obs in env.observation_space and np.all(np.isfinite(obs))
    if terminated:
        assert r == -5.0 * 10  # per step left, this one included
    else:
        np.testing.assert_allclose(env.state, [1.0, 0.0])  # clipped into the box


def test_non_finite_reward_terminates() -> None:
    env = SurrogateEnv(Linear(), OBS, ACT, lambda x, u, xn: float("nan"),
                       lambda rng: np.zeros(2), max_steps=5)
    env.reset(seed=0)
    _, r, term, _, info = env.step(np.zeros(1))
    assert term and r == 0.0 and info["termination"] == "non-finite reward"


def test_infinite_bounds_never_terminate_and_infinite_margin_never_terminates() -> None:
    obs = gym.spaces.Box(np.array([-np.inf, 0.0]), np.array([np.inf, 1.0]), dtype=np.float64)
    env = SurrogateEnv(Constant([1e12, 0.5]), obs, ACT, quadratic, lambda rng: np.zeros(2))
    env.reset(seed=0)
    assert not env.step(np.zeros(1))[2]
    env = make(Constant([50.0, 0.0]), termination_margin=float("inf"))
    env.reset(seed=0)
    _, _, term, _, _ = env.step(np.zeros(1))
    assert not term and env.state[0] == 1.0


def test_initial_states_are_validated_and_clipped() -> None:
    env = SurrogateEnv(Linear(), OBS, ACT, quadratic, lambda rng: np.array([5.0, 0.0]))
    assert env.reset(seed=0)[0][0] == 1.0
    env = SurrogateEnv(Linear(), OBS, ACT, quadratic, lambda rng: np.zeros(3))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        env.reset(seed=0)
    env = SurrogateEnv(Linear(), OBS, ACT, quadratic, lambda rng: np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="finite"):
        env.reset(seed=0)


def test_state_sampler_draws_recorded_rows() -> None:
    rows = np.array([[0.1, 0.2], [0.3, 0.4], [-0.5, 1.0]])
    sample = state_sampler(rows)
    rng = np.random.default_rng(0)
    drawn = {tuple(np.asarray(sample(rng))) for _ in range(50)}
    assert drawn == {tuple(r) for r in rows}
    with pytest.raises(ValueError, match="non-finite"):
        state_sampler([[np.nan, 0.0]])
    with pytest.raises(ValueError, match="2-D"):
        state_sampler(np.zeros(3))


def test_wrong_prediction_size_is_a_clear_error() -> None:
    env = make(Constant([1.0, 2.0, 3.0]))
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match="predict"):
        env.step(np.zeros(1))


@pytest.mark.parametrize(("kw", "field"), [
    ({"max_steps": 0}, "SurrogateOptions.max_steps = 0"),
    ({"max_steps": 2.5}, "SurrogateOptions.max_steps"),
    ({"termination_margin": -0.1}, "SurrogateOptions.termination_margin = -0.1"),
    ({"termination_margin": float("nan")}, "SurrogateOptions.termination_margin"),
    ({"termination_reward": float("inf")}, "SurrogateOptions.termination_reward"),
    ({"action_tolerance": 2.0}, "SurrogateOptions.action_tolerance"),
])
def test_bad_settings_raise_option_errors_naming_the_field(kw: dict[str, object], field: str
                                                           ) -> None:
    with pytest.raises(OptionError, match=field.replace(".", r"\.")):
        make(**kw)


def test_bad_spaces_and_models_are_rejected() -> None:
    with pytest.raises(TypeError, match="Box action_space"):
        SurrogateEnv(Linear(), OBS, gym.spaces.Discrete(3), quadratic,  # type: ignore[arg-type]
                     lambda rng: np.zeros(2))
    with pytest.raises(TypeError, match="predict"):
        SurrogateEnv(object(), OBS, ACT, quadratic, lambda rng: np.zeros(2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword"):
        make(max_step=3)


def test_importing_the_surrogate_pulls_no_heavy_library() -> None:
    code = ("import sys, ctrlbench.surrogate\n"
            "print(','.join(m for m in ('torch', 'pysindy', 'stable_baselines3', 'sklearn', "
            "'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
