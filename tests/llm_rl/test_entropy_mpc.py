import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrlbench.options import OptionError
from llm_rl.entropy_control import ENTROPY_CONTROLLERS, ControlConfig, make_entropy_controller
from llm_rl.entropy_mpc import (
    COUNTDOWN_THETA,
    SUMPAIR_THETA,
    ModelPredictiveController,
    NMPCOptions,
    quadratic_model,
)

INTEGRATOR = (0.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0)  # H+ = H + 0.5 u


def make(setpoint=0.6, actuator="entropy_coef", **options):
    return make_entropy_controller(ControlConfig(name="nmpc", actuator=actuator,
                                                 setpoint=setpoint, options=options))


def test_registered_lazily_with_its_options():
    assert ENTROPY_CONTROLLERS.options("nmpc") is NMPCOptions
    assert ENTROPY_CONTROLLERS.load("nmpc") is ModelPredictiveController
    c = make()
    assert isinstance(c, ModelPredictiveController) and c.value == 0.0
    assert len(SUMPAIR_THETA) == len(COUNTDOWN_THETA) == 7


def test_model_terms():
    th = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    # 1 + 2 H + 3 u + 4 H^2 + 5 H u + 6 u^2 + 7 v at H = 0.5, u = 0.1, v = 0.2
    assert quadratic_model(th, 0.5, 0.1, 0.2) == pytest.approx(
        1 + 1.0 + 0.3 + 1.0 + 0.25 + 0.06 + 1.4)


def test_one_step_inverse_on_an_integrator_by_hand():
    # horizon 1, trusted readings, no offset state, grid 0, 0.1, ..., 1
    c = make(theta=INTEGRATOR, horizon=1, n_grid=11, u_high=1.0, obs_gain=1.0, dist_gain=0.0)
    # reading 0.5, u_k = 0: H_k+1 = 0.5; 0.5 + 0.5 u = 0.6 -> u = 0.2
    assert c.update(0.5) == pytest.approx(0.2)
    assert c.pred == pytest.approx(0.5)
    # reading 0.55: H_k+1 = 0.55 + 0.5 x 0.2 = 0.65 > H*: the best bonus is the lowest, 0
    assert c.update(0.55) == 0.0
    assert c.pred == pytest.approx(0.65)


def test_observer_by_hand():
    c = make(theta=INTEGRATOR, horizon=1, n_grid=11, u_high=1.0, obs_gain=0.5, dist_gain=0.2)
    c.update(0.5)  # x = 0.5, d = 0, u = 0.2, prediction of the next reading 0.5
    c.update(0.7)  # innovation 0.2: x = 0.5 + 0.1, d = 0.04
    assert (c.x, c.d) == pytest.approx((0.6, 0.04))
    assert c.pred == pytest.approx(0.6 + 0.5 * 0.2 + 0.04)


def test_the_previous_bonus_is_in_the_prediction():
    th = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5)  # the bonus acts one step late only
    c = make(theta=th, horizon=1, n_grid=11, u_high=1.0, obs_gain=1.0, dist_gain=0.0,
             u_start=0.2)
    # H_k+1 = 0.5 + 0.5 x u_start = 0.6; H_k+2 = 0.6 + 0.5 u_k (= 0.2) = 0.7 whatever the
    # candidate: the cost is flat, the first grid point (0) wins
    assert c.update(0.5) == 0.0
    assert c.pred == pytest.approx(0.6)
    # horizon 2: the candidate acts on the second predicted step only:
    # cost(u) = (0.5 - 0.6)^2 + (0.5 + 0.5 u - 0.6)^2 -> u = 0.2
    c2 = make(theta=th, horizon=2, n_grid=11, u_high=1.0, obs_gain=1.0, dist_gain=0.0)
    assert c2.update(0.5) == pytest.approx(0.2)


def test_removes_a_constant_model_offset():
    # the plant drifts down 0.05 per step more than the model knows; the offset state finds it
    c = make(theta=INTEGRATOR, horizon=3, u_high=1.0, obs_gain=0.5, dist_gain=0.3)
    h, u, hs = 0.9, c.value, []
    for _ in range(200):
        u_next = c.update(h)
        h = h + 0.5 * u - 0.05
        u = u_next
        hs.append(h)
    assert np.mean(hs[-50:]) == pytest.approx(0.6, abs=0.01)
    assert c.d == pytest.approx(-0.05, abs=0.01)


def test_outputs_stay_on_the_grid_within_bounds():
    c = make(u_low=0.05, u_high=0.3, u_start=0.05, n_grid=6)
    rng = np.random.default_rng(0)
    for h in rng.uniform(0, 3, 60):
        u = c.update(float(h))
        assert 0.05 - 1e-12 <= u <= 0.3 + 1e-12
        assert np.isclose(np.linspace(0.05, 0.3, 6), u).any()


def test_resume_equals_an_uninterrupted_run():
    readings = [0.9, 0.8, 0.7, 0.65, 0.5, 0.55, 0.62, 0.6, 0.58, 0.7, 0.9, 0.66]
    a = make(theta=COUNTDOWN_THETA, u_high=0.3, momentum=0.2)
    full = [a.update(h) for h in readings]
    b = make(theta=COUNTDOWN_THETA, u_high=0.3, momentum=0.2)
    first = [b.update(h) for h in readings[:5]]
    state = b.state_dict()
    c = make(theta=COUNTDOWN_THETA, u_high=0.3, momentum=0.2)
    c.load_state_dict(state)
    assert first + [c.update(h) for h in readings[5:]] == full


def test_needs_the_bonus_actuator():
    with pytest.raises(OptionError, match=r"needs control\.actuator = 'entropy_coef', got 'temp"):
        make(actuator="temperature", u_low=0.5, u_high=1.5, u_start=1.0)


@settings(max_examples=40, deadline=None)
@given(field=st.sampled_from(["theta", "u_high", "u_start", "horizon", "n_grid",
                              "move_weight", "above_weight", "obs_gain", "dist_gain",
                              "momentum"]),
       pick=st.integers(0, 2))
def test_bad_options_name_the_field_and_the_valid_range(field, pick):
    bad = {"theta": [(1.0,) * 6, (math.nan,) * 7, (1.0,) * 8],
           "u_high": [0.0, -1.0, -0.5], "u_start": [0.7, -0.1, 5.0],
           "horizon": [0, -1, 51], "n_grid": [1, 0, 10002],
           "move_weight": [-1e-3, -1.0, math.inf], "above_weight": [0.5, 0.0, math.nan],
           "obs_gain": [0.0, 1.5, -0.1], "dist_gain": [1.0, -0.1, 2.0],
           "momentum": [-0.1, 1.0, math.nan]}[field][pick]
    with pytest.raises(OptionError, match=f"control.{field}") as err:
        NMPCOptions(**{field: bad})
    assert "valid" in str(err.value) or "must" in str(err.value) or ">" in str(err.value)


def test_unknown_option_is_rejected():
    with pytest.raises((OptionError, TypeError), match="kp"):
        make(kp=1.0)


def test_momentum_carries_the_last_change_by_hand():
    c = make(theta=INTEGRATOR, horizon=1, n_grid=11, u_high=1.0, obs_gain=1.0, dist_gain=0.0,
             momentum=0.5)
    assert c.update(0.5) == pytest.approx(0.2)  # no change seen yet: as without momentum
    # x goes 0.5 -> 0.6: H_k+1 = 0.6 + 0.5 x 0.2 + 0.5 x 0.1 = 0.75
    assert c.update(0.6) == 0.0
    assert c.pred == pytest.approx(0.75)
    assert (c.x, c.x_prev) == pytest.approx((0.6, 0.5))


def test_h_floor_holds_the_model_at_its_region_edge():
    th = (0.0, 1.0, -0.5, 0.0, 1.0, 0.0, 0.0)  # input gain H - 0.5: negative below H = 0.5
    c = make(theta=th, horizon=1, n_grid=11, u_high=1.0, obs_gain=1.0, dist_gain=0.0,
             h_floor=0.6)
    # at H = 0.4 the raw model says the bonus lowers H; at the floor the gain is 0.1 > 0.
    # H_k+1 = 0.4 (u_k = 0); H_k+2 = 0.4 + 0.1 u needs u = 2 -> the top of the grid
    assert c.update(0.4) == 1.0
    raw = make(theta=th, horizon=1, n_grid=11, u_high=1.0, obs_gain=1.0, dist_gain=0.0)
    assert raw.update(0.4) == 0.0  # the unfloored model withholds the bonus


@pytest.mark.parametrize("task", ["sumpair", "countdown-lite"])
def test_presets_are_valid_options(task):
    from llm_rl.entropy_mpc import NMPC_PRESETS

    o = NMPCOptions(**NMPC_PRESETS[task])
    assert o.theta == (SUMPAIR_THETA if task == "sumpair" else COUNTDOWN_THETA)
    c = make(**NMPC_PRESETS[task])
    assert 0.0 <= c.update(0.9) <= o.u_high


def _rows(path):
    return [{k: v for k, v in json.loads(x).items() if k != "time_s"}
            for x in (path / "metrics.jsonl").read_text().splitlines() if x]


@pytest.mark.slow
def test_trainer_resume_with_nmpc_equals_the_uninterrupted_run(tiny, tmp_path):
    """A real tiny run driven by nmpc: killed one step past its checkpoint and resumed, it
    logs exactly the rows of the uninterrupted run (the controller state is checkpointed)."""
    from llm_rl.cli import main
    from llm_rl.config import config_from_dict
    from llm_rl.trainer import GRPOTrainer

    flags = ["--control.name", "nmpc", "--control.setpoint", "2.0", "--control.momentum", "0.2"]
    assert main(tiny(tmp_path / "full", *flags)) == 0
    full = _rows(tmp_path / "full")
    assert any(r["actuator"] > 0 for r in full)
    cfg = config_from_dict(json.loads((tmp_path / "full" / "config.json").read_text()))
    assert cfg.control.options == NMPCOptions(momentum=0.2)
    part = GRPOTrainer(dataclasses.replace(cfg, out_dir=str(tmp_path / "part")))
    part.train(steps=2)  # checkpoint at step 2
    part.train_step()  # one step past the checkpoint moves the controller, then the run dies
    resumed = GRPOTrainer(dataclasses.replace(cfg, out_dir=str(tmp_path / "part")), resume=True)
    resumed.train()
    assert _rows(tmp_path / "part") == full


def test_fit_quadratic_model_recovers_a_known_model_from_closed_loop_like_data():
    from llm_rl.entropy_mpc import fit_quadratic_model
    from llm_rl.sysid import RunData

    theta = np.array([0.01, 0.95, 0.10, -0.05, 0.30, -0.20, 0.15])
    rng = np.random.default_rng(3)
    runs = []
    for _ in range(3):
        u = rng.choice([0.0, 0.1, 0.25, 0.4], size=60)  # several levels: u and u^2 separable
        h = np.empty(60)
        h[:2] = 0.6
        for k in range(1, 59):
            h[k + 1] = quadratic_model(theta, h[k], u[k], u[k - 1])
        runs.append(RunData(h, u))
    np.testing.assert_allclose(fit_quadratic_model(runs), theta, atol=1e-8)
    with pytest.raises(ValueError, match="too few to fit the 7 coefficients"):
        fit_quadratic_model([RunData(h[:6], u[:6])])
